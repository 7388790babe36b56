"""The identity network's training options (`python main.py --model identity --is_train`): the defaults are the
utkface128 recipe's (docs/pagan_recipe.md, "An identity network trained here")."""

import dataclasses
import os


@dataclasses.dataclass
class IdentityOptions:
    prepared_dir: str = os.path.join("data", "prepared")
    savedir: str = os.path.join("save", "identity")
    out_dir: str = os.path.join("checkpoints", "identity")   # where PAGAN's --identity reads it
    image_size: int = 96
    width: int = 32
    epochs: int = 6
    batch_size: int = 128          # faces a step; two views each, so 2 x 128 - 2 negatives per view
    learning_rate: float = 1e-3
    checkpoint_minutes: float = 10.0
    summary_every: int = 10
    seed: int = 2017
    on_bad_checkpoint: str = "error"
    recipe: str = "none"
