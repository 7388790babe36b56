"""CAAE's settings, each default in one place: the architecture and optimisation (CAAEConfig, the original's), a
training run (TrainOptions), test mode (TestOptions) and the named recipes of --recipe. The command line's defaults
are these (face_aging/cli/flags.py). Free of TensorFlow, so the command line reads them before it loads anything."""

import dataclasses
import os

# The weights w0, w1, w2 of G's adversarial term, E's adversarial term and total variation: the original's.
DEFAULT_WEIGHTS = (1e-4, 0.0, 0.0)
# Where an original TF1 checkpoint to start from is looked for (the original's layout).
DEFAULT_INIT_CHECKPOINT = os.path.join("checkpoints", "caae", "model-init")


def image_size_problem(size):
    """Why `size` cannot be CAAE's image size (None if it can): E halves it down to 4x4 and G doubles it back."""
    if size < 32 or size & (size - 1):
        return "must be a power of two >= 32 (32, 64, 128, 256, ...)"
    return None


@dataclasses.dataclass
class CAAEConfig:
    """Architecture and optimisation settings; the defaults are the original's."""
    image_size: int = 128
    z_dim: int = 50
    enc_channels: int = 64
    gen_channels: int = 1024
    learning_rate: float = 2e-4
    beta1: float = 0.5
    decay_rate: float = 1.0       # staircase decay every `decay_epochs`; 1.0 (constant) in the original
    decay_epochs: int = 2
    seed: int = 2017
    precision: str = "float32"    # training only: float32 | mixed_bfloat16 | mixed_float16
    xla: bool = False             # compile the training step with XLA
    # The aging recipe (losses.py, docs/caae_recipe.md); 0 = off, the original's objective.
    age_loss: float = 0.0         # lambda_age: a frozen age classifier's cross-entropy on faces aged to random groups
    id_loss: float = 0.0          # lambda_id: |E(aged face) - E(x)|
    z_age_loss: float = 0.0       # lambda_zage: E leaves D_age unable to tell the age group from z

    # What a checkpoint's shapes depend on: test mode, --eval and --export read them from the run's options.json.
    ARCHITECTURE = ("image_size", "z_dim", "enc_channels", "gen_channels")


# --recipe: named sets of CAAE training flags (a flag given explicitly wins). `utkface64` is the command that made
# the bundled model (docs/caae_recipe.md); with --dataset pointing at UTKFace it reproduces it.
RECIPES = {
    "utkface64": {"image_size": 64, "enc_channels": 32, "gen_channels": 256, "z_dim": 50, "batch_size": 64,
                  "use_trained_model": False, "pretrain_epochs": 3, "epoch": 19, "age_loss": 0.01,
                  "z_age_loss": 0.3, "flip": True, "holdout": "test"},
}


@dataclasses.dataclass
class TrainOptions:
    savedir: str = "save"
    dataset: str = "UTKFace"
    epoch: int = 50
    batch_size: int = 100
    weights: tuple = DEFAULT_WEIGHTS          # w0, w1, w2 (losses.py)
    use_trained_model: bool = True
    use_init_model: bool = True
    init_checkpoint: str = ""
    init_checkpoint_explicit: bool = False   # given on the command line: a missing file is then an error
    pretrain_epochs: int = 10
    num_synthetic: int = 6000
    num_vis: int = 100
    save_every_epochs: int = 5
    checkpoint_minutes: float = 10.0
    summary_every: int = 1
    max_to_keep: int = 3
    data_root: str = "data"
    on_bad_checkpoint: str = "error"  # or "fallback": continue from the newest checkpoint that restores
    holdout: bool = False              # leave out the held-out faces (data/holdout.py: test and val sets)
    flip: bool = False                 # mirror each training face with probability 1/2 (the recipe's augmentation)
    age_classifier_epochs: int = 5     # training of the recipe's age classifier C (with config.age_loss > 0)
    recipe: str = "none"               # --recipe: the named flag set this run started from (RECIPES)
    config: CAAEConfig = dataclasses.field(default_factory=CAAEConfig)
