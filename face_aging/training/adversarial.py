"""What CAAE's and PAGAN's training models share: one Adam optimiser (and loss-scaling applier) per player, the step
variable, the replica branch of a step, and setting the step. Each model writes its own step (the paper's order of
updates) and its own equations (its losses.py)."""

import tensorflow as tf

from face_aging.training import precision
from face_aging.training.optimizer import Adam


class AdversarialModel:
    """Players are (name, variables, loss term): each steps on the gradient of its term. `strategy` (a
    tf.distribute strategy, None for one device) holds the variables and runs the step on its replicas."""

    def __init__(self, config, strategy=None):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.distributed = strategy is not None
        self.players = []
        self.networks = []    # every network the checkpoint holds (None where a model has not built it)

    def build_optimizers(self, schedule, **adam):
        """One Adam (learning rate `schedule()`, a fresh schedule each) per player, built before any restore so that
        nothing is restored lazily, and the global step. Call inside the strategy's scope."""
        self.optimizers, self.appliers = {}, {}
        for name, variables, _ in self.players:
            optimizer = Adam(schedule(), beta_1=self.config.beta1, name=f"adam_{name}", **adam)
            optimizer.build(variables)
            self.optimizers[name] = optimizer
            self.appliers[name] = precision.loss_scaled(optimizer, self.config.precision)
            if self.appliers[name] is not optimizer:
                self.appliers[name].build(variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")

    def compile_step(self):
        """self.train_step: self._train_step as one tf.function (XLA with config.xla)."""
        self.train_step = tf.function(self._train_step, jit_compile=self.config.xla or None)

    def on_replicas(self, replica_step, *args):
        """(loss terms, outputs) of `replica_step(*args)`: run once on one device; on several replicas, the terms
        are their mean and the outputs (a tensor or a dict of them) are gathered along the batch."""
        if self.replicas == 1:
            return replica_step(*args)
        terms, outputs = self.strategy.run(replica_step, args=args)
        terms = {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                 for name, value in terms.items()}
        return terms, tf.nest.map_structure(lambda value: self.strategy.gather(value, axis=0), outputs)

    def scaled_losses(self, terms):
        """Each player's loss, ready for its gradient: replicas' gradients are summed, so each contributes its mean
        over its share over the replica count; float16 scales it (precision.loss_scaled)."""
        return {name: self.appliers[name].scale_loss(terms[key] / self.replicas) for name, _, key in self.players}

    def player_gradients(self, tape, scaled):
        """{player: the gradients of its loss with respect to its variables}, all from the forward pass `tape`
        recorded."""
        return {name: tape.gradient(scaled[name], variables) for name, variables, _ in self.players}

    def apply_gradients(self, tape, scaled):
        """Every player steps on the gradient of its loss, all from the same forward pass recorded by `tape`."""
        gradients = self.player_gradients(tape, scaled)
        for name, variables, _ in self.players:
            self.appliers[name].apply_gradients(zip(gradients[name], variables))

    def checkpoint_variables(self):
        """Every variable the checkpoint holds that can go non-finite: the networks' and the optimisers'."""
        return ([v for net in self.networks if net is not None for v in net.weights]
                + [v for optimizer in self.optimizers.values() for v in optimizer.variables])

    def describe_step(self, batch_size, items):
        """The line saying how a step runs (precision, replicas, XLA), or None for the plain default: float32 on one
        device without XLA. `items`: what a batch holds ("faces", "pairs")."""
        c = self.config
        if not (self.distributed or c.precision != "float32" or c.xla):
            return None
        return (f"Precision {c.precision}, {self.replicas} replica(s) of {batch_size // self.replicas} {items}"
                f"{', XLA' if c.xla else ''}")

    @property
    def learning_rate(self):
        return float(self.optimizers[self.players[0][0]].learning_rate)

    def set_step(self, step):
        """Set the global step, and the optimisers' iteration counts that drive the learning-rate schedule."""
        self.step.assign(step)
        for optimizer in self.optimizers.values():
            optimizer.iterations.assign(step)
