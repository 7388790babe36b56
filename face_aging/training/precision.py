"""--precision: Keras mixed-precision policies around network construction, and loss scaling for float16.

Variables, optimiser state and every loss stay float32 in all three modes; only the layers' computations change.
Networks built for inference (test mode, --eval, --export) are always float32, so a checkpoint restores into any
precision.
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@contextlib.contextmanager
def policy(name):
    """Layers created inside compute in `name`'s dtype; the global policy is restored afterwards."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def loss_scaled(optimizer, precision):
    """The optimiser that applies gradients: float16 gradients underflow without dynamic loss scaling.

    The inner optimiser is the one checkpoints hold, so runs can switch precision on resume (the loss scale itself
    starts again from its initial value).
    """
    if precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
