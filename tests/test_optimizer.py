"""The training models' Adam (face_aging/training/optimizer.py): Keras's Adam, each update one ResourceApplyAdam."""

import keras
import numpy as np
import tensorflow as tf

from face_aging.training.optimizer import Adam


def _run(optimizer_class, steps=4):
    rng = np.random.default_rng(3)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32"), name=f"w{i}")
                 for i, shape in enumerate([(5, 5, 3, 8), (8,), (40, 1)])]
    optimizer = optimizer_class(learning_rate=keras.optimizers.schedules.ExponentialDecay(2e-3, 2, 0.5, True),
                                beta_1=0.5, epsilon=1e-8, name="adam_EG")
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply_gradients(zip(grads, variables)))
    for _ in range(steps):
        step([tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables])
    return variables, optimizer


def test_the_same_updates_and_variables_as_keras_adam():
    ours, ours_optimizer = _run(Adam)
    theirs, theirs_optimizer = _run(keras.optimizers.Adam)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert [v.path for v in ours_optimizer.variables] == [v.path for v in theirs_optimizer.variables]
    # The kernel takes 1 - beta_2 in float32 (1 - 0.999f), Keras in float64 then rounds: v differs by 1.3e-5 relative.
    for a, b in zip(ours_optimizer.variables, theirs_optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=3e-5, atol=1e-8)
    # The weights moved: a test of two optimisers that did nothing would pass above too.
    start, _ = _run(Adam, steps=0)
    assert min(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(ours, start)) > 1e-3


def test_one_operation_per_variable_in_the_graph():
    variables = [keras.Variable(np.ones((3, 3), "float32"), name=f"w{i}") for i in range(6)]
    graphs = {}
    for cls in (Adam, keras.optimizers.Adam):
        optimizer = cls(1e-3)
        optimizer.build(variables)
        graph = tf.function(lambda g: optimizer.apply_gradients(zip(g, variables))).get_concrete_function(
            [tf.TensorSpec((3, 3))] * 6).graph
        graphs[cls] = [op.type for op in graph.get_operations()]
    assert graphs[Adam].count("ResourceApplyAdam") == 6
    assert len(graphs[Adam]) < len(graphs[keras.optimizers.Adam]) / 2
