"""The Adam every training here uses: Keras's, with each variable's update one TensorFlow operation."""

import keras
import tensorflow as tf


class Adam(keras.optimizers.Adam):
    """Keras's Adam, each variable's update one TensorFlow operation: ResourceApplyAdam, the kernel TF1's
    AdamOptimizer (the original CAAE's) ran. The same arithmetic as keras.optimizers.Adam (m += (g - m)(1 - b1),
    v += (g^2 - v)(1 - b2), w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)) and the same variables, so
    checkpoints are unchanged; Keras writes it as some 25 graph operations per variable, which were a third of a
    training step's graph (1,822 of 5,955 for a 32x32 CAAE) and of the time to trace it."""

    _scalars = None   # while one update runs: {dtype: the step's scalars}, made once for all its variables

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self._scalars = {}
        try:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._scalars = None

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices) or self._scalars is None:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        if dtype not in self._scalars:
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            self._scalars[dtype] = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                                        lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
                                        epsilon=tf.cast(self.epsilon, dtype))
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(var=_handle(variable), m=_handle(self._momentums[index]),
                                     v=_handle(self._velocities[index]), grad=tf.cast(gradient, dtype),
                                     **self._scalars[dtype])


def _handle(variable):
    """A variable's resource handle (a Keras variable's tf.Variable's; under a strategy, this device's copy)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle
