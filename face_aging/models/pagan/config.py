"""PAGAN's settings, each default in one place: the paper's (PAGANConfig, LossWeights), a generator's training
run (PAGANTrainOptions), phi_age's training (AgeOptions), where the frozen networks are kept. The command line's
defaults for --model pagan and age are these (face_aging/cli/flags.py). Free of TensorFlow."""

import dataclasses
import os

GEN_CHANNELS = 32          # the generator's first width; 64 and 128 follow (x2, x4)
AGE_CLASSIFIER_DIR = os.path.join("checkpoints", "age_classifier")
VGG_FACE_DIR = os.path.join("checkpoints", "vgg_face")


def image_size_problem(size):
    """Why `size` cannot be an image size of PAGAN's networks (None if it can): VGG-16 has five 2x2 max-pools."""
    if size is None or size < 32 or size % 32:
        return "must be a multiple of 32 (VGG-16's five 2x2 max-pools), at least 32 (224 is the paper's)"
    return None


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The paper's weights on CACD."""
    pixel: float = 0.20
    adversarial: float = 750.0
    identity: float = 0.005
    pixel_every: int = 5
    pixel_scale: float = 127.5     # [-1, 1] differences -> 0-255 units
    chroma: float = 0.0            # recipe: weight of L_chroma (losses.py); 0 = the paper's objective
    estimator: float = 0.0         # recipe: weight of L_est (losses.py); 0 = the paper's objective
    estimator_target: float = 70.0  # L_est's target age in years
    fine: float = 0.0              # recipe: weight of L_fine (losses.py), the change's fine part; 0 = the paper's


@dataclasses.dataclass
class PAGANConfig:
    """The paper's settings as defaults; the open points of docs/PAGAN.md are the `res_blocks`, `padding`, `tap` and
    `identity_layer` fields."""
    image_size: int = 224
    target_cluster: int = 1
    gen_channels: int = GEN_CHANNELS
    res_blocks: int = 4            # open: the released model may use 5 with reflection padding
    padding: str = "zero"          # zero | reflect
    head_width: float = 1.0        # discriminator heads' width relative to the paper's
    tap: str = "relu"              # phi_age taps after the ReLU ("relu") or before it ("conv")
    identity_layer: str = "fc7"    # VGG-Face descriptor layer: fc6 | fc7 (after ReLU) | fc8 (logits)
    residual_output: bool = False  # recipe: G(x) = x + change, the change's last layer starting at zero
    upsample: str = "deconv"       # deconv (the paper's transposed convolutions) | resize (nearest x2, then conv 3x3)
    template: str = "pagan"        # the crop photos are aligned to in test mode: pagan (loose, CACD-like) | utkface
    change_split: str = ""         # bundled generators: "SIGMA,LOW,HIGH", the change's coarse/fine parts scaled apart
    learning_rate: float = 1e-4
    beta1: float = 0.5             # the paper does not say; 0.5 as in DCGAN-style GAN training
    decay_every: int = 2000        # iterations between halvings of the learning rate
    decay_rate: float = 0.5
    weights: LossWeights = dataclasses.field(default_factory=LossWeights)
    seed: int = 2017               # --seed's default, as CAAE's
    precision: str = "float32"     # training only: G and D compute in it; the frozen judges stay float32
    xla: bool = False

    ARCHITECTURE = ("image_size", "gen_channels", "res_blocks", "padding", "head_width", "tap", "identity_layer",
                    "residual_output", "upsample", "template", "change_split")


@dataclasses.dataclass
class PAGANTrainOptions:
    savedir: str = os.path.join("save", "pagan")
    prepared_dir: str = os.path.join("data", "prepared")
    iterations: int = 50000
    batch_size: int = 8
    age_classifier: str = AGE_CLASSIFIER_DIR
    identity: str = VGG_FACE_DIR          # a converted VGG-Face folder, "caae" (the recipe's stand-in) or "random"
    estimator_dir: str = ""               # the age estimator of --age_classifier estimator and L_est ("" = bundled)
    use_trained_model: bool = True
    sample_every: int = 500
    save_every: int = 2000
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    max_to_keep: int = 3
    on_bad_checkpoint: str = "error"  # or "fallback": continue from the newest checkpoint that restores
    recipe: str = "none"              # --recipe: the named flag set this run started from (RECIPES)
    init_generator: str = ""          # a run folder (SAVEDIR/clusterK) whose G starts this run's G ("" = random)
    # Which faces are G's inputs and which are D's real faces: by default the young faces (cluster 0) and the target
    # cluster's; with target_cluster 0 (a generator that makes faces younger) the faces of 31 and over and the young
    # ones. (LO, HI) years narrows either (e.g. target_ages (20, 30): young adults, not UTKFace's many babies).
    source_ages: tuple = ()
    target_ages: tuple = ()
    config: PAGANConfig = dataclasses.field(default_factory=PAGANConfig)


@dataclasses.dataclass
class AgeOptions:
    prepared_dir: str = os.path.join("data", "prepared")
    savedir: str = os.path.join("save", "age")
    out_dir: str = AGE_CLASSIFIER_DIR
    init: str = VGG_FACE_DIR      # start from converted VGG-Face weights where present ("" = from scratch)
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-4
    image_size: int = 224
    width: float = 1.0
    fc_units: int = 4096
    val_limit: int = 2000                # validation faces evaluated each epoch (a fixed seeded subset)
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    seed: int = 2017
    on_bad_checkpoint: str = "error"     # or "fallback": continue from the newest checkpoint that restores
    recipe: str = "none"                 # --recipe: the named flag set this run started from (RECIPES)


# Named flag sets (--recipe; explicit flags win), one per --model they apply to. utkface128: PAGAN trained on UTKFace on
# two CPU cores in under three hours, the bundled generators' recipe (docs/pagan_recipe.md). Every option in it is
# off by default, so without --recipe the paper's settings stand.
RECIPE_PREPARED_DIR = os.path.join("data", "utkface_prepared")
RECIPE_AGE_CLASSIFIER = os.path.join("checkpoints", "age_classifier_utkface128")
RECIPE_IDENTITY = os.path.join("checkpoints", "identity_utkface128")
RECIPES = {
    "utkface128": {
        "prepare": {"holdout": "test", "prepared_dir": RECIPE_PREPARED_DIR},
        "age": {"image_size": 128, "vgg_width": 0.125, "fc_units": 256, "epoch": 10, "batch_size": 32,
                "learning_rate": 2e-4, "identity": "", "prepared_dir": RECIPE_PREPARED_DIR,
                "age_classifier": RECIPE_AGE_CLASSIFIER, "savedir": os.path.join("save", "age_utkface128")},
        "identity": {"image_size": 96, "epoch": 6, "batch_size": 128, "learning_rate": 1e-3,
                     "prepared_dir": RECIPE_PREPARED_DIR, "identity": RECIPE_IDENTITY,
                     "savedir": os.path.join("save", "identity_utkface128")},
        "pagan": {"image_size": 128, "gen_channels": 16, "head_width": 0.25, "residual_output": True,
                  "upsample": "resize", "chroma": 3.0, "template": "utkface",
                  "identity": "caae", "weights": ["0.2", "750", "200"], "pixel_every": 1, "iterations": 3000,
                  "decay_every": 1500, "learning_rate": 2e-4, "prepared_dir": RECIPE_PREPARED_DIR,
                  "age_classifier": RECIPE_AGE_CLASSIFIER, "savedir": os.path.join("save", "pagan_utkface128"),
                  "sample_every": 250, "save_every": 500},
    },
}
# On top of a recipe's "pagan" stage, per target cluster. utkface128's 41-50 generator, trained from scratch on its
# 1,003 faces (half of its neighbours'), aged no more than the 31-40 one; it starts instead from the 51+ generator of
# the same --savedir (trained first) and learns how much less to age, against the identity network of the recipe's
# "identity" stage rather than the CAAE encoder (8 points more of its faces verified, no pulled features), with the
# colour weight that keeps irises their colour (docs/pagan_recipe.md, pilots M-P). "init_cluster": K sets
# --init_generator SAVEDIR/clusterK.
RECIPE_CLUSTERS = {
    "utkface128": {2: {"init_cluster": 3, "iterations": 1500, "decay_every": 750, "identity": RECIPE_IDENTITY,
                       "chroma": 6.0}},
}


def config_from_run(run):
    """The PAGANConfig a run (a training.rundir.RunDir) recorded in its options.json: its generator, rebuilt."""
    recorded = run.read_options()
    fields = {name: recorded[name] for name in PAGANConfig.ARCHITECTURE if name in recorded}
    return PAGANConfig(**fields)
