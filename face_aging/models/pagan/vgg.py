"""VGG-16, the network behind both of PAGAN's frozen feature extractors (see docs/PAGAN.md).

- VGG-Face (2622 identities) gives the identity descriptor: fc7 after its ReLU, in inference mode.
- phi_age, a VGG-16 that classifies the four age clusters, feeds the pyramid discriminator through its taps
  conv1_2, conv2_2, conv3_3 and conv4_3.

Layer names are the VGG-Face (MatConvNet) ones, conv1_1 ... conv5_3, fc6, fc7, fc8, so imported weights map name for
name. The convolutions carry no activation of their own: the ReLU is applied in `_run`, which lets a tap be read
before or after it (docs/PAGAN.md leaves that open). fc6 is a Dense layer on the flattened last map in NHWC (H, W, C)
order; at 224x224 that is exactly MatConvNet's 7x7 "convolution" fc6 with its filter bank reshaped.

Both networks take images in [-1, 1], the range the generator produces, and convert them to what VGG-Face was trained
on (RGB 0-255 minus the mean colour) themselves: feeding [-1, 1] directly was a bug of the PyTorch reproduction.
"""

import operator

import keras
import tensorflow as tf

from face_aging.models.pagan.config import image_size_problem

VGG_FACE_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
TAPS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")
VGG16_CHANNELS = (64, 128, 256, 512, 512)
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
FC_LAYERS = ("fc6", "fc7", "fc8")

# Every stage in running order: (name, kind). Taps may be taken at any of them.
STAGES = tuple(
    [stage for block, n in enumerate(CONVS_PER_BLOCK, 1)
     for stage in [(f"conv{block}_{i}", "conv") for i in range(1, n + 1)] + [(f"pool{block}", "pool")]]
    + [(name, "fc") for name in FC_LAYERS])
CONV_LAYERS = tuple(name for name, kind in STAGES if kind == "conv")
_STAGE_INDEX = {name: i for i, (name, _) in enumerate(STAGES)}


def scaled_channels(width):
    """VGG16_CHANNELS times `width`, each at least 1: the same architecture, narrow enough for tests."""
    return tuple(max(1, int(round(c * width))) for c in VGG16_CHANNELS)


def check_image_size(image_size):
    """The image size as an int; ValueError unless it is a multiple of 32 (five 2x2 max-pools), at least 32."""
    try:
        size = operator.index(image_size)
    except TypeError:
        size = None
    problem = image_size_problem(size)
    if problem:
        raise ValueError(f"VGG-16 image size {problem}; got {image_size!r}")
    return size


class VGG16(keras.Model):
    """VGG-16 (13 convs 3x3 pad 1 + ReLU, 5 max-pools 2x2, fc6, fc7, fc8). Used as VGG-Face (num_classes 2622)
    and as the age classifier phi_age (num_classes 4).

    Input images are float RGB in [-1, 1], [N, image_size, image_size, 3]. The model is built (all weights exist)
    when the constructor returns, so a checkpoint can be restored into it straight away.
    """

    def __init__(self, num_classes, image_size=224, channels=VGG16_CHANNELS, fc_units=4096, dropout=0.5,
                 mean_rgb=VGG_FACE_MEAN_RGB, input_scale=1.0, name="vgg16", **kwargs):
        super().__init__(name=name, **kwargs)
        image_size = check_image_size(image_size)
        channels = tuple(int(c) for c in channels)
        if len(channels) != len(CONVS_PER_BLOCK) or min(channels) < 1:
            raise ValueError(f"channels must be five positive widths, one per VGG block, got {channels}")
        if len(mean_rgb) != 3:
            raise ValueError(f"mean_rgb must be three numbers (R, G, B in 0-255), got {mean_rgb}")
        self.num_classes = int(num_classes)
        self.image_size = image_size
        self.channels = channels
        self.fc_units = int(fc_units)
        self.dropout_rate = float(dropout)
        self.mean_rgb = tuple(float(m) for m in mean_rgb)
        # VGG-Face (and a classifier initialised from it) sees 0-255 minus the mean: scale 1. A VGG-16 trained from
        # scratch has no normalisation layer to absorb inputs of +-128, so it is given 1/127.5 (about unit range).
        self.input_scale = float(input_scale)
        self.final_side = image_size // 32

        # He initialisation for the layers a ReLU follows: VGG-16 has no normalisation, and with Glorot's smaller
        # scale a 16-layer ReLU stack trained from scratch (phi_age without VGG-Face weights) barely starts.
        for block, n in enumerate(CONVS_PER_BLOCK, 1):
            for i in range(1, n + 1):
                # Plain attributes, not a list: Keras 3 gives attributes (not list items) a checkpoint dependency,
                # and the attribute name is the checkpoint key (conv1_1, ...).
                setattr(self, f"conv{block}_{i}", keras.layers.Conv2D(
                    channels[block - 1], 3, padding="same", kernel_initializer="he_normal", name=f"conv{block}_{i}"))
        self.fc6 = keras.layers.Dense(self.fc_units, kernel_initializer="he_normal", name="fc6")
        self.fc7 = keras.layers.Dense(self.fc_units, kernel_initializer="he_normal", name="fc7")
        self.fc8 = keras.layers.Dense(self.num_classes, name="fc8")
        self.drop6 = keras.layers.Dropout(self.dropout_rate, name="drop6")
        self.drop7 = keras.layers.Dropout(self.dropout_rate, name="drop7")
        self._build_layers()

    def _build_layers(self):
        # Built shape by shape rather than by a dummy forward pass: at 224 with the real widths a forward pass
        # costs ~15 GFLOP, creating the variables costs nothing.
        side, cin = self.image_size, 3
        for block, n in enumerate(CONVS_PER_BLOCK, 1):
            for i in range(1, n + 1):
                getattr(self, f"conv{block}_{i}").build((None, side, side, cin))
                cin = self.channels[block - 1]
            side //= 2
        self.fc6.build((None, side * side * cin))
        self.fc7.build((None, self.fc_units))
        self.fc8.build((None, self.fc_units))
        self.built = True

    def layer(self, name):
        """The conv or fc layer called `name` (conv1_1 ... conv5_3, fc6, fc7, fc8)."""
        if name not in CONV_LAYERS and name not in FC_LAYERS:
            raise ValueError(f"VGG16 has no weight layer {name!r}; it has {', '.join(CONV_LAYERS + FC_LAYERS)}")
        return getattr(self, name)

    def preprocess(self, images):
        """[-1, 1] RGB -> the network's input: RGB in 0-255 minus the mean colour of its training faces."""
        images = tf.cast(tf.convert_to_tensor(images), self.compute_dtype)
        centred = (images + 1.0) * 127.5 - tf.constant(self.mean_rgb, dtype=images.dtype)
        return centred if self.input_scale == 1.0 else centred * self.input_scale

    def _run(self, images, wanted, after_relu, training):
        """Run the stages in order, stopping after the deepest one in `wanted`; returns {name: output}."""
        unknown = [name for name in wanted if name not in _STAGE_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG16 tap(s) {', '.join(map(repr, unknown))}; valid taps: "
                             f"{', '.join(name for name, _ in STAGES)}")
        if not wanted:
            return {}
        last = max(_STAGE_INDEX[name] for name in wanted)
        x = self.preprocess(images)
        if x.shape.rank != 4 or x.shape[-1] != 3:
            raise ValueError(f"VGG16 expects images [N, H, W, 3], got shape {x.shape}")
        outputs = {}
        for name, kind in STAGES[:last + 1]:
            if kind == "pool":
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            elif kind == "conv":
                x = getattr(self, name)(x)
            else:
                if name == "fc6":
                    side = x.shape[1]
                    if side is not None and side != self.final_side:
                        raise ValueError(
                            f"VGG16 {self.name} was built for {self.image_size}x{self.image_size} images, got "
                            f"{side * 32}x{side * 32}: its fc layers only fit the size it was built for")
                    x = tf.reshape(x, [-1, self.final_side * self.final_side * self.channels[-1]])
                x = getattr(self, name)(x)
            if kind == "pool" or name == "fc8":
                if name in wanted:
                    outputs[name] = x
                continue
            if name in wanted and not after_relu:
                outputs[name] = x
            x = tf.nn.relu(x)
            if name in wanted and after_relu:
                outputs[name] = x
            if name == "fc6":
                x = self.drop6(x, training=training)
            elif name == "fc7":
                x = self.drop7(x, training=training)
        return outputs

    def call(self, images, training=False):
        """Logits [N, num_classes] for images in [-1, 1]; dropout after fc6 and fc7 only when training."""
        return self._run(images, ("fc8",), True, training)["fc8"]

    def taps(self, images, names=TAPS, after_relu=True):
        """{name: feature map} at the named stages, in inference mode, running only as deep as the deepest one.

        Names are conv1_1 ... conv5_3, pool1 ... pool5, fc6, fc7, fc8. `after_relu` chooses whether conv / fc6 / fc7
        outputs are read after their ReLU or before it; pools and fc8 (the logits) have no ReLU of their own.
        """
        if isinstance(names, str):
            names = (names,)
        return self._run(images, tuple(names), after_relu, False)

    def descriptor(self, images, layer="fc7"):
        """Deep face descriptor [N, units]: fc6 or fc7 after ReLU, or fc8 (the logits). Always without dropout."""
        if layer not in FC_LAYERS:
            raise ValueError(f"descriptor layer must be one of {', '.join(FC_LAYERS)}, got {layer!r}")
        return self._run(images, (layer,), True, False)[layer]

    def get_config(self):
        return {"num_classes": self.num_classes, "image_size": self.image_size, "channels": list(self.channels),
                "fc_units": self.fc_units, "dropout": self.dropout_rate, "mean_rgb": list(self.mean_rgb),
                "input_scale": self.input_scale,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
