"""A quiet start: TensorFlow's start-up notices never reach the user, anything else written to stderr does."""

import os
import subprocess
import sys

import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("InitializeLog", "cuInit", "cudart_stub", "oneDNN custom operations", "rebuild TensorFlow")


def test_filtered_stderr_drops_only_the_start_up_notices():
    # C-level writes to descriptor 2, as TensorFlow's C++ logging does, and a Python one.
    script = (
        "import os, sys\n"
        "from face_aging.quiet import filtered_stderr\n"
        "with filtered_stderr():\n"
        "    os.write(2, b'E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\\n')\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to "
        "STDERR\\n')\n"
        "    os.write(2, b'E0000 some_op.cc:1] a real error\\n')\n"
        "    print('from python', file=sys.stderr)\n"
        "os.write(2, b'after the block\\n')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["E0000 some_op.cc:1] a real error", "from python", "after the block"]


@pytest.mark.slow
def test_test_mode_starts_without_tensorflow_notices(tmp_path):
    face = tmp_path / "faces" / "30_0_0_20170101000000000.jpg.chip.jpg"
    face.parent.mkdir()
    Image.new("RGB", (64, 64), (150, 120, 100)).save(face)
    result = subprocess.run([sys.executable, "main.py", "--model", "caae", "--is_train", "False", "--testdir",
                             str(face.parent), "--savedir", str(tmp_path / "save")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Done! 1 face(s)" in result.stdout
    output = result.stdout + result.stderr
    assert not [word for word in NOISE if word in output], output


@pytest.mark.slow
def test_the_page_starts_without_tensorflow_notices(tmp_path):
    """--serve imports the page's module, which reads photos with TensorFlow, while its flags are checked: it used
    to print TensorFlow's notices, twice. Stopped by SIGTERM the moment it prints its address, it removes its
    folder."""
    import pytest
    pytest.importorskip("gradio")
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = subprocess.Popen([sys.executable, "main.py", "--model", "caae", "--serve", "--port", "0", "--savedir",
                               str(tmp_path / "save")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ, TMPDIR=str(temp)))
    try:
        started = False
        for line in server.stdout:                          # until it serves (or stops)
            if "Open http://127.0.0.1:" in line:
                started = True
                break
        server.terminate()
        output, errors = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert started and server.returncode == 0, errors              # stopped by SIGTERM as by Ctrl-C
    assert not [p for p in os.listdir(temp) if p.startswith("face-aging-app-")]      # its folder removed
    assert not [word for word in NOISE if word in errors + output], errors
