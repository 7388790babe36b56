"""The estimator's training options (`python main.py --model estimator --is_train`): the defaults are the bundled
estimator's settings (face_aging/pretrained/estimator_utkface96/MODEL_CARD.md)."""

import dataclasses
import os


@dataclasses.dataclass
class EstimatorOptions:
    prepared_dir: str = os.path.join("data", "prepared")
    savedir: str = os.path.join("save", "estimator")
    image_size: int = 96
    width: int = 32
    epochs: int = 16
    batch_size: int = 64
    learning_rate: float = 1e-3
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    seed: int = 2017
    texture: float = 0.0           # share of training views given train.texture_jitter (--estimator_texture)
    on_bad_checkpoint: str = "error"
    recipe: str = "none"
