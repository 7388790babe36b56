"""A quiet start: TensorFlow's C++ start-up lines (no CUDA driver, cuInit failed on a machine without a GPU, oneDNN
and CPU-instruction notices, absl's "before InitializeLog" banner) are dropped, and nothing else.

They are written by C++ straight to file descriptor 2, below Python's sys.stderr, and TF_CPP_MIN_LOG_LEVEL does not
reach the ones logged before absl is initialised; so while TensorFlow is imported and finds its devices, descriptor 2
is a pipe whose lines are passed on as they arrive, except those of the known start-up notices. Anything else --
a real error, a crash's last words -- still reaches the terminal.
"""

import contextlib
import os
import re
import sys
import threading

# Lines of a normal start on a machine with or without a GPU: never a problem a user must act on.
START_NOISE = re.compile("|".join((
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"rebuild TensorFlow with the appropriate compiler flags",
    r"TF-TRT Warning: Could not find TensorRT",
)))


@contextlib.contextmanager
def filtered_stderr(noise=START_NOISE):
    """Within the block, lines written to file descriptor 2 (by Python or C++) that match `noise` are dropped; the
    others go on to the real stderr as they are written."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not noise.search(line.decode("utf-8", "replace")):
                    os.write(real, line)

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)      # closes the pipe's last write end: the thread sees its end and stops
        thread.join(timeout=5)
        os.close(real)


def start_tensorflow():
    """Import TensorFlow and let it find its devices, without its start-up notices. Call before any other
    TensorFlow work; later imports are then silent (the libraries are loaded). Once is enough: later calls return."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()
