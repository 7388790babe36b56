"""The one place that picks a model by its --model name: every consumer (test mode, --eval, --export, --serve,
videos) loads an Ager (face_aging/models/ager.py) here and uses only that interface."""

from face_aging.errors import FlagError


def _classes():
    from face_aging.models.caae.ager import CAAEAger
    from face_aging.inference.combined import CombinedAger
    from face_aging.models.pagan.ager import PAGANAger
    return {cls.key: cls for cls in (CAAEAger, PAGANAger, CombinedAger)}



def load_ager(model, savedir, init_checkpoint="", residual=None, architecture=None):
    """The trained `model` ("caae" | "pagan" | "combined") of run directory `savedir` (its own checkpoints, else the
    bundled weights). CAAE: `init_checkpoint` an original TF1 checkpoint to use when the run has none, `residual`
    as --residual (None: the model's own), `architecture` the flags given explicitly (a dict, or a CAAEConfig)."""
    classes = _classes()
    if model not in classes:
        raise FlagError(f"--model={model}: no such aging model; expected one of {', '.join(classes)}")
    return classes[model].load(savedir, init_checkpoint=init_checkpoint, residual=residual,
                               architecture=architecture)
