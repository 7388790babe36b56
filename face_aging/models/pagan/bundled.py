"""The PAGAN generators this package ships: one per target cluster, trained here with the utkface128 recipe on
UTKFace (face_aging/pretrained/pagan_utkface128/, docs/pagan_recipe.md).

Test mode, --eval, --export and the page use them when the run directory holds no generator of its own, so a fresh
clone ages photos to 31-40, 41-50 and 51+ without training. MODEL_CARD.md beside them says how they were made, what
they were measured to do and where they fail. The judges they were trained against (phi_age, the identity network)
are not shipped: inference needs only the generators.
"""

import json
import os

from face_aging.data.labels import NUM_AGE_CLUSTERS

NAME = "pagan_utkface128"
# face_aging/pretrained/NAME: the package's data, beside its code
DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pretrained",
                         NAME)
CARD = os.path.join(DIRECTORY, "MODEL_CARD.md")


def cluster_dir(k, directory=DIRECTORY):
    return os.path.join(directory, f"cluster{k}")


def prefix(k, directory=DIRECTORY):
    return os.path.join(cluster_dir(k, directory), "generator")


def available(directory=DIRECTORY):
    """The clusters (1-3) whose generator is bundled."""
    return [k for k in range(1, NUM_AGE_CLUSTERS)
            if os.path.exists(prefix(k, directory) + ".index")
            and os.path.exists(os.path.join(cluster_dir(k, directory), "options.json"))]


def card_path():
    """MODEL_CARD.md as a user finds it (fileio.shown_path)."""
    from face_aging.fileio import shown_path
    return shown_path(CARD)


def describe(k):
    return f"the bundled generator {NAME}/cluster{k} (trained on UTKFace with the utkface128 recipe; {card_path()})"


def write(savedir, directory=DIRECTORY, scale=1.0, split=""):
    """Make a run's generators the bundled ones: for every SAVEDIR/clusterK with a checkpoint, the generator alone (no
    discriminator, no optimiser state) as DIRECTORY/clusterK/generator.*, beside the run's options.json and where it
    came from. For maintainers: `python -m face_aging.models.pagan.bundled SAVEDIR [--scale S] [--split SIGMA,LOW,HIGH]`.
    Returns the prefixes written.

    `scale`: a residual generator's change G(x) - x multiplied by S (its last convolution's kernel and bias; the change
    is linear in them), recorded as `_change_scale`. The strength of a change is chosen on validation faces after
    training, where age and likeness trade (docs/pagan_recipe.md); scaled here, the shipped file is the model.

    `split`: "SIGMA,LOW,HIGH", recorded as the generator's change_split (networks.PAGANGenerator): its change's coarse
    part scaled by LOW and its fine part by HIGH whenever it runs. Not a weight: a run continued from the bundled
    generator (--init_generator) trains the weights without it."""
    import tensorflow as tf
    from face_aging.models.pagan.config import config_from_run
    from face_aging.models.pagan.model import build_generator
    from face_aging.models.pagan.networks import parse_change_split
    from face_aging.training.rundir import cluster_run
    parse_change_split(split)       # a malformed --split is named before anything is written
    written = []
    for k in range(1, NUM_AGE_CLUSTERS):
        run = cluster_run(savedir, k)
        latest = tf.train.latest_checkpoint(run.checkpoint) if os.path.isdir(run.checkpoint) else None
        if not latest:
            continue
        config = config_from_run(run)
        generator = build_generator(config)
        tf.train.Checkpoint(generator=generator).restore(latest).expect_partial().assert_existing_objects_matched()
        if (scale != 1.0 or split) and not config.residual_output:
            raise ValueError(f"{run.root}: --scale and --split need a residual generator (--residual_output); this "
                             f"one draws whole faces, whose change is not linear in its last layer")
        if scale != 1.0:
            for variable in generator.out_conv.trainable_variables:
                variable.assign(variable * scale)
        os.makedirs(cluster_dir(k, directory), exist_ok=True)
        checkpoint = tf.train.Checkpoint(generator=generator)
        checkpoint.save_counter  # created, so that a restore of the generator alone matches every object written
        written.append(checkpoint.write(prefix(k, directory)))
        recorded = run.read_options()
        reader = tf.train.load_checkpoint(latest)
        step = reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") if reader.has_tensor(
            "step/.ATTRIBUTES/VARIABLE_VALUE") else "unknown"
        recorded["_bundled_from"] = f"{os.path.basename(latest)} of {run.root} (step {step})"
        if scale != 1.0:
            recorded["_change_scale"] = scale
        if split:
            recorded["change_split"] = split
        with open(os.path.join(cluster_dir(k, directory), "options.json"), "w") as f:
            json.dump(recorded, f, indent=2, sort_keys=True)
            f.write("\n")
    if not written:
        raise FileNotFoundError(f"{savedir}/cluster{{1,2,3}}/checkpoint: no generator checkpoint to bundle")
    return written


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="Make a run's PAGAN generators the bundled ones.")
    parser.add_argument("savedir")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply each residual generator's change by this")
    parser.add_argument("--split", default="", help="SIGMA,LOW,HIGH: scale the change's coarse part (Gaussian of "
                        "SIGMA px) by LOW and its fine rest by HIGH")
    arguments = parser.parse_args()
    print("\n".join(write(arguments.savedir, scale=arguments.scale, split=arguments.split)))
