"""The instance-discrimination identity network: a face in [-1, 1] -> a unit-length descriptor.

Trained as SimCLR trains (Chen et al., ICML 2020) on faces without identity labels: two augmented views of each face
must find each other among the other faces of the batch (NT-Xent, below). What survives the augmentations (crop,
mirror, brightness, contrast, colour, grey) is what tells one face from another: the shape of the face and its
features, more than its lighting or colour. PAGAN uses the descriptor (the pooled features f(x), before the projection
head g, unit length) as its identity network in place of VGG-Face (face_aging/models/pagan/frozen.py).

    z_i = g(f(view_i)) / |g(f(view_i))|,   s_ij = z_i . z_j / tau
    L_NT-Xent = mean over the 2N views i of  -log( exp(s_i,p(i)) / sum_{j != i} exp(s_ij) )

p(i) is the other view of the same face; the other 2N - 2 views of the batch are the negatives.
"""

import keras
import tensorflow as tf

from face_aging import layers

TEMPERATURE = 0.2


class InstanceIdentity(keras.Model):
    """f: stages of (3x3 conv, 3x3 stride-2 conv) with batch norm and ReLU, widths doubling from `width` (at most
    8x), global average pooling; g: a 2-layer projection head (train time only).

    Same interface as VGG16 where PAGAN uses it as its identity network: image_size, descriptor(images, layer),
    info."""

    def __init__(self, image_size=96, width=32, projection=128, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.width, self.projection = int(image_size), int(width), int(projection)
        self.info = {}
        self.blocks = layers.conv_stages(self.image_size, self.width, "id")
        layers.track_layers(self, [layer for block in self.blocks for layer in block])
        self.head_hidden = keras.layers.Dense(2 * self.projection, name="id_head_hidden")
        self.head_out = keras.layers.Dense(self.projection, name="id_head_out")

    def get_config(self):
        return {"image_size": self.image_size, "width": self.width, "projection": self.projection, "name": self.name}

    @classmethod
    def from_config(cls, config):
        """Built, so that a checkpoint read into it is matched at once (vgg_store.read_vgg)."""
        model = cls(**config)
        model(tf.zeros([1, model.image_size, model.image_size, 3]))
        return model

    def features(self, images, training=False):
        """f(x): [N, channels] pooled features of faces already at image_size."""
        x = tf.cast(images, self.compute_dtype)
        for conv, bn in self.blocks:
            x = tf.nn.relu(bn(conv(x), training=training))
        return tf.reduce_mean(x, axis=[1, 2])

    def call(self, images, training=False):
        """g(f(x)): the projection NT-Xent is computed on."""
        return tf.cast(self.head_out(tf.nn.relu(self.head_hidden(self.features(images, training)))), tf.float32)

    def descriptor(self, images, layer=None):
        """The identity descriptor: f(x) at unit length, [N, channels] float32 (faces of any size, resized);
        `layer` is VGG-Face's choice and has no meaning here. Squared distances lie in [0, 4]."""
        if images.shape[1] != self.image_size:
            images = tf.image.resize(images, [self.image_size] * 2, antialias=True)
        return tf.math.l2_normalize(tf.cast(self.features(images), tf.float32), axis=-1)


def build(image_size=96, width=32, projection=128):
    return InstanceIdentity.from_config({"image_size": image_size, "width": width, "projection": projection,
                                         "name": "instance_identity"})


def nt_xent(z_a, z_b, temperature=TEMPERATURE):
    """(loss, accuracy) of NT-Xent for projections of the two views [N, D] each (as above); accuracy: the share of
    views whose most similar other view is their partner."""
    z = tf.math.l2_normalize(tf.concat([z_a, z_b], axis=0), axis=-1)
    n = tf.shape(z_a)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature
    similarity -= tf.eye(2 * n) * 1e9                     # a view is not its own negative
    partners = tf.concat([tf.range(n, 2 * n), tf.range(n)], axis=0)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partners, similarity))
    found = tf.equal(tf.argmax(similarity, axis=1, output_type=tf.int32), partners)
    return loss, tf.reduce_mean(tf.cast(found, tf.float32))
