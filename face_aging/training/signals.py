"""Stopping a training run cleanly: SIGINT (Ctrl-C) and SIGTERM (what schedulers send before pre-empting a job)
ask the loop to save a checkpoint after the current step and exit; a second signal stops at once."""

import logging
import signal
import threading


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint after the current step and exits."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        logging.warning("%s received: saving a checkpoint after this step, then stopping "
                        "(send it again to stop at once)", self.signal)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
