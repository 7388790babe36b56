"""face_aging/models/tracing.py: networks called eagerly for their first calls (test mode calls each once or twice a
run, where a trace costs more than it saves), then through a trace (the page and videos call them again and again)."""

import numpy as np
import tensorflow as tf

from face_aging.models.tracing import TracedAfter, traced_after


def test_a_generator_runs_eagerly_twice_then_through_one_trace_for_any_batch_size():
    layer = tf.keras.layers.Conv2D(3, 3, padding="same")
    run = TracedAfter(lambda x: layer(x), input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    x = tf.random.uniform([2, 8, 8, 3], seed=4)
    eager = [run(x).numpy(), run(x[:1]).numpy()]
    assert run.traced.experimental_get_tracing_count() == 0
    traced = [run(x).numpy(), run(x[:1]).numpy(), run(tf.concat([x, x], 0)).numpy()]
    assert run.traced.experimental_get_tracing_count() == 1 and run.calls == 5
    np.testing.assert_allclose(traced[0], eager[0], atol=1e-6)
    np.testing.assert_allclose(traced[1], eager[1], atol=1e-6)
    assert traced[2].shape == (4, 8, 8, 3)


class Scaler:
    def __init__(self, factor):
        self.factor, self.eager = factor, []

    @traced_after(reduce_retracing=True)
    def scale(self, x, shift):
        self.eager.append(tf.executing_eagerly())
        return x * self.factor + shift


def test_a_method_counts_its_calls_and_keeps_its_traces_per_object():
    one, two = Scaler(2.0), Scaler(3.0)
    x = tf.ones([2, 4])
    outputs = [one.scale(x, 1.0).numpy() for _ in range(4)]
    # Two eager calls, then one trace (a traced call runs the Python body only while tracing).
    assert one.eager == [True, True, False]
    assert all(np.array_equal(o, np.full([2, 4], 3.0)) for o in outputs)
    # The second object starts eager again and traces its own function: its factor is not the first one's.
    assert two.scale(x, 0.0).numpy()[0, 0] == 3.0 and two.eager == [True]
    for _ in range(2):
        last = two.scale(x[:1], 0.0).numpy()
    assert two.eager == [True, True, False] and last.shape == (1, 4) and last[0, 0] == 3.0


def test_the_caae_ages_alike_eagerly_and_traced(lively_run):
    from face_aging.inference.agers import load_ager
    model = load_ager("caae", lively_run[0]).model          # a fresh model: no call counted yet
    faces = np.random.default_rng(2).uniform(-1, 1, [3, 32, 32, 3]).astype(np.float32)
    genders = np.array([[1, -1], [-1, 1], [1, -1]], np.float32)
    calls = [model.age_faces(faces, [10, 37, 70], genders, 2.5, [20.0, np.nan, 40.0]) for _ in range(3)]
    progression = [model.age_progression(faces, genders) for _ in range(3)]
    # The first two calls eager, the third traced: the same faces within float error.
    np.testing.assert_allclose(calls[2], calls[0], atol=1e-5)
    np.testing.assert_allclose(progression[2], progression[0], atol=1e-5)
    traced = model.__dict__["_traced_after__encode"].traced
    assert model.__dict__["_traced_after__encode"].calls == 3 and traced.experimental_get_tracing_count() == 1
    assert calls[0].shape == (3, 3, 32, 32, 3) and progression[0].shape == (10, 3, 32, 32, 3)
