"""A training status line: epoch, batch, images/s and time left. In place on a terminal, one line every
`interval` seconds otherwise (log files, CI)."""

import sys
import time


def format_duration(seconds):
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def bar(fraction, width):
    """`=====>    `: `width` characters, filled to `fraction` (0-1)."""
    return ("=" * int(min(1.0, max(0.0, fraction)) * width) + ">").ljust(width)[:width]


class StatusLine:
    """One status line: rewritten in place on a terminal, a new line each time otherwise (log files, CI)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.open = False  # a terminal line is being rewritten in place

    def write(self, line):
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
            self.open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def newline(self):
        """End the line being rewritten, if any (so a second call, or one after a plain line, adds no blank line)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


class Progress(StatusLine):
    def __init__(self, total_steps, done_steps, batch_size, stream=None, interval=10.0, width=24):
        StatusLine.__init__(self, stream)
        self.total, self.done, self.batch_size = total_steps, done_steps, batch_size
        self.interval, self.width = interval, width
        self.start = self.last_print = time.time()
        self.start_done = done_steps
        self.rate = None  # images/s, smoothed

    def update(self, steps_done, epoch_text, batch, batches, losses):
        now = time.time()
        elapsed = now - self.start
        trained = steps_done - self.start_done
        if trained > 0 and elapsed > 0:
            # The first step includes tracing; an average from the start still converges quickly.
            self.rate = trained * self.batch_size / elapsed
        if not self.tty and now - self.last_print < self.interval and steps_done < self.total:
            return
        self.last_print = now
        filled = bar(batch / max(1, batches), self.width)
        left = (self.total - steps_done) * self.batch_size / self.rate if self.rate else float("nan")
        rate = f"{self.rate:6.1f} img/s" if self.rate else "   ... img/s"
        loss_text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
        self.write(f"{epoch_text} {batch:>4}/{batches} [{filled}] {rate}  left "
                   f"{format_duration(left) if self.rate else '?'}  {loss_text}")
