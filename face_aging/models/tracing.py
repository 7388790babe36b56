"""Networks run eagerly for their first calls, then through a trace.

Called eagerly, Keras's per-layer overhead is most of a small batch's time (a PAGAN generator 75 ms a face against
15 traced; the CAAE's E and G 95 against 45 ms), so the page and videos, which call a network for every request or
frame, want the trace. But a trace costs 0.2-0.3 s a function, and test mode calls each function once or twice per
run (all its faces at once): there the traces were a third of a 10-face run's start (BENCHMARKS.md)."""

import functools

import tensorflow as tf

EAGER_CALLS = 2


class TracedAfter:
    """fn(*args): eagerly for its first `eager_calls` calls, then through tf.function(fn, **tf_function_options)."""

    def __init__(self, fn, eager_calls=EAGER_CALLS, **tf_function_options):
        self.fn, self.eager_calls, self.calls = fn, eager_calls, 0
        self.traced = tf.function(fn, **tf_function_options)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return (self.fn if self.calls <= self.eager_calls else self.traced)(*args, **kwargs)


def traced_after(eager_calls=EAGER_CALLS, **tf_function_options):
    """A method decorator: TracedAfter per instance (each object counts its own calls and keeps its own traces)."""

    def decorate(method):
        attribute = f"_traced_after_{method.__name__}"

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            runner = self.__dict__.get(attribute)
            if runner is None:  # through __dict__: a Keras model would track an attribute set the usual way
                runner = self.__dict__[attribute] = TracedAfter(
                    functools.partial(method, self), eager_calls, **tf_function_options)
            return runner(*args, **kwargs)

        return call

    return decorate
