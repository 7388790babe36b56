"""The training status line: rewritten in place on a terminal; on a pipe or a log file (CI, nohup, a scheduler),
plain lines at an interval, never a carriage return."""

import io
import time

from face_aging.training.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream, interval, pause_at=None):
    """20 steps of a 2-epoch run reported to `stream`, all at once except for a pause before step `pause_at`."""
    progress = Progress(total_steps=20, done_steps=0, batch_size=4, stream=stream, interval=interval)
    for step in range(1, 21):
        if step == pause_at:
            time.sleep(interval * 1.5)
        progress.update(step, f"[epoch {(step - 1) // 10 + 1}/2]", (step - 1) % 10 + 1, 10, {"EG": 0.5})
        if step % 10 == 0:
            progress.newline()
    return stream.getvalue()


def test_not_a_terminal_gets_plain_lines_at_the_interval():
    text = run(io.StringIO(), interval=0.5, pause_at=7)
    assert "\r" not in text and "\033" not in text
    lines = text.splitlines()
    # Nothing for the first steps (within the interval), one line after the pause, one at the very end.
    assert len(lines) == 2, lines
    assert lines[0].startswith("[epoch 1/2]    7/10 [") and "img/s" in lines[0] and "EG 0.5000" in lines[0]
    assert lines[1].startswith("[epoch 2/2]   10/10 [========================]")
    assert text.endswith("\n")


def test_a_terminal_gets_one_line_rewritten_in_place():
    text = run(Terminal(), interval=0.5)
    assert text.count("\r") == 20                      # every step, in place
    assert text.count("\n") == 2                       # one line per epoch stays
    assert text.split("\n")[0].rsplit("\r", 1)[1].startswith("[epoch 1/2]   10/10 [========================]")
