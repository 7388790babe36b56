"""Make tests/data/original_caae_gradients.npz: the original TF1 CAAE's own graph, run once, for
tests/test_original_gradients.py.

    python scripts/original_gradients.py --original path/to/Face-Aging-CAAE    # a checkout of ZZUTK/Face-Aging-CAAE

The original's FaceAging.py and ops.py are executed as they are, with three stand-ins for what today's Python,
TensorFlow and SciPy no longer have (nothing of the original is copied into this package):
- Python 2's `print 'text'` statements become calls (the only Python 2 syntax in the two files);
- `tensorflow` is tf.compat.v1 (graph mode, variable scopes, placeholders, tf.gradients) plus
  `tf.contrib.layers.batch_norm`, written here with contrib's defaults for the arguments the original passes
  (decay 0.999, epsilon 0.001, center, no scale; in training, the batch's statistics through fused_batch_norm, as
  contrib's fused path computes them);
- `scipy.misc.imread/imresize/imsave` (removed from SciPy) are never called while the graph is built: stubs.

The graph is the original's at 32x32 with narrow E and G (--enc 8 --gen 64; D_z and D_img are fixed in the original
and so full size), batch 8. Its variables are set to tests/helpers.random_arrays(..., legacy=True) (NumPy's
RandomState: the same numbers on every NumPy), so the fixture stores no weights, only a hash of them. Stored: the
batch (faces, labels, z prior), the original's eight loss terms, z and G(z), and the gradients of its three players'
losses (loss_EG with its default weights 1e-4, 0, 0; loss_Dz; loss_Di) with respect to their variables. Tensors of
more than MAX_ENTRIES values keep a fixed random subset of their entries (the indices are stored), to keep the file
small; drift from a change in arithmetic spreads over every entry, so a subset sees it.

Run with oneDNN off (set here before TensorFlow loads): the reference is TensorFlow's plain Eigen kernels.
--size/--enc/--gen/--batch make a larger one to measure with (e.g. the original's 128, 64, 1024, 100):
FACE_AGING_ORIGINAL_GRADIENTS=that.npz python -m pytest -s tests/test_original_gradients.py
"""

import argparse
import os
import platform
import re
import sys
import types

# The reference: TensorFlow's plain Eigen kernels (--onednn keeps oneDNN, to measure the original against itself).
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if "--onednn" in sys.argv else "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from helpers import ORIGINAL_FIXTURE, original_shapes, random_arrays, weights_digest  # noqa: E402

MAX_ENTRIES = 4096


def contrib_batch_norm(inputs, scale=False, is_training=True, scope=None, reuse=None, decay=0.999, epsilon=0.001,
                       center=True):
    """tf.contrib.layers.batch_norm for what the original uses: variables SCOPE/beta, moving_mean, moving_variance."""
    assert not scale and center
    tf1 = tf.compat.v1
    channels = inputs.shape[-1]
    with tf1.variable_scope(scope, reuse=reuse):
        beta = tf1.get_variable("beta", [channels], initializer=tf1.zeros_initializer())
        moving_mean = tf1.get_variable("moving_mean", [channels], initializer=tf1.zeros_initializer(),
                                       trainable=False)
        moving_variance = tf1.get_variable("moving_variance", [channels], initializer=tf1.ones_initializer(),
                                           trainable=False)
    rank = inputs.shape.ndims
    x = tf.reshape(inputs, [-1, 1, 1, channels]) if rank == 2 else inputs
    gamma = tf.ones([channels])
    if is_training:
        y, mean, variance = tf1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon, is_training=True)
        for moving, value in ((moving_mean, mean), (moving_variance, variance)):
            tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, moving.assign_sub((moving - value) * (1 - decay)))
    else:
        y, _, _ = tf1.nn.fused_batch_norm(x, gamma, beta, mean=moving_mean, variance=moving_variance,
                                          epsilon=epsilon, is_training=False)
    return tf.reshape(y, tf.shape(inputs)) if rank == 2 else y


def tf1_module():
    """`tensorflow` as the original imported it: tf.compat.v1 with contrib's batch_norm."""
    module = types.ModuleType("tensorflow")
    module.__dict__.update({k: getattr(tf.compat.v1, k) for k in dir(tf.compat.v1) if not k.startswith("__")})
    module.contrib = types.SimpleNamespace(layers=types.SimpleNamespace(batch_norm=contrib_batch_norm))
    return module


def python3(source):
    """Python 2's print statements as calls."""
    return re.sub(r"^(\s*)print (.+)$", r"\1print(\2)", source, flags=re.M)


def load_original(directory):
    """The original's FaceAging class, its modules executed against the stand-ins above."""
    def stub(*_, **__):
        raise RuntimeError("scipy.misc stand-in: not used while the graph is built")
    misc = types.ModuleType("scipy.misc")
    misc.imread = misc.imresize = misc.imsave = stub
    saved = {name: sys.modules.get(name) for name in ("tensorflow", "scipy.misc", "ops")}
    sys.modules["tensorflow"], sys.modules["scipy.misc"] = tf1_module(), misc
    try:
        ops = types.ModuleType("ops")
        exec(compile(python3(open(os.path.join(directory, "ops.py")).read()), "ops.py", "exec"), ops.__dict__)
        sys.modules["ops"] = ops
        face_aging = types.ModuleType("FaceAging")
        exec(compile(python3(open(os.path.join(directory, "FaceAging.py")).read()), "FaceAging.py", "exec"),
             face_aging.__dict__)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return face_aging.FaceAging


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, help="a checkout of ZZUTK/Face-Aging-CAAE (FaceAging.py, ops.py)")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", ORIGINAL_FIXTURE["file"]))
    for key in ("size", "enc", "gen", "batch"):   # other shapes, to measure (the test reads them from the file)
        parser.add_argument(f"--{key}", type=int, default=ORIGINAL_FIXTURE[key])
    parser.add_argument("--onednn", action="store_true", help="keep oneDNN on (read before TensorFlow loads)")
    parser.add_argument("--weights", help="an .npz of TF1-named arrays (e.g. a trained E and G) over the seed's; "
                        "stored in the output")
    parser.add_argument("--faces", help="a folder of face images: the batch's first --batch of them instead of noise")
    args = parser.parse_args()
    f = dict(ORIGINAL_FIXTURE, size=args.size, enc=args.enc, gen=args.gen, batch=args.batch)
    FaceAging = load_original(args.original)
    arrays = random_arrays(original_shapes(f["size"], f["z_dim"], f["enc"], f["gen"]), seed=f["seed"], legacy=True)
    given = dict(np.load(args.weights)) if args.weights else {}
    arrays.update(given)
    rng = np.random.RandomState(f["seed"] + 1)
    batch = f["batch"]
    images = rng.uniform(-1, 1, (batch, f["size"], f["size"], 3)).astype(np.float32)
    if args.faces:
        from PIL import Image
        files = sorted(os.listdir(args.faces))[:batch]
        images = np.stack([np.asarray(Image.open(os.path.join(args.faces, name)).convert("RGB").resize(
            (f["size"], f["size"]), Image.BILINEAR), np.float32) / 127.5 - 1 for name in files])
    ages = -np.ones((batch, 10), np.float32)
    ages[np.arange(batch), np.concatenate([rng.permutation(10) for _ in range(-(-batch // 10))])[:batch]] = 1
    genders = -np.ones((batch, 2), np.float32)
    genders[np.arange(batch), np.arange(batch) % 2] = 1
    z_prior = rng.uniform(-1, 1, (batch, f["z_dim"])).astype(np.float32)

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        model = FaceAging(session, size_image=f["size"], size_batch=batch, num_encoder_channels=f["enc"],
                          num_gen_channels=f["gen"], num_z_channels=f["z_dim"], is_training=True,
                          save_dir=os.path.join("/tmp", "original_gradients_save"))
        variables = {v.name[:-2]: v for v in tf.compat.v1.global_variables()}
        if set(variables) != set(arrays):
            sys.exit(f"the original's variables differ from tests/helpers.original_shapes: "
                     f"{sorted(set(variables) ^ set(arrays))}")
        for name, value in arrays.items():
            variables[name].load(value, session)
        w0, w1, w2 = (1e-4, 0.0, 0.0)  # the original train()'s default `weigts`
        losses = {"loss_EG": model.EG_loss + w0 * model.G_img_loss + w1 * model.E_z_loss + w2 * model.tv_loss,
                  "loss_Dz": model.D_z_loss_prior + model.D_z_loss_z,
                  "loss_Di": model.D_img_loss_input + model.D_img_loss_G}
        players = {"loss_EG": model.E_variables + model.G_variables, "loss_Dz": model.D_z_variables,
                   "loss_Di": model.D_img_variables}
        fetch = {"terms/" + name: getattr(model, name) for name in (
            "EG_loss", "G_img_loss", "E_z_loss", "tv_loss", "D_z_loss_prior", "D_z_loss_z", "D_img_loss_input",
            "D_img_loss_G")}
        fetch["z"], fetch["G"] = model.z, model.G
        for loss, variables_ in players.items():
            for variable, gradient in zip(variables_, tf.gradients(losses[loss], variables_)):
                fetch[f"grad/{loss}/{variable.name[:-2]}"] = gradient
        feed = {model.input_image: images, model.age: ages, model.gender: genders, model.z_prior: z_prior}
        values = session.run(fetch, feed)

    out = {"shape": np.array([f["size"], f["z_dim"], f["enc"], f["gen"], f["batch"], f["seed"]]), "images": images, "ages": ages, "genders": genders, "z_prior": z_prior,
           "weights_sha256": np.array(weights_digest(arrays)),
           "made_with": np.array(f"TensorFlow {tf.__version__}, oneDNN {'on' if args.onednn else 'off'}, NumPy {np.__version__}, "
                                 f"{platform.machine()} {platform.processor() or ''}".strip())}
    if given:   # the test then takes the weights from the file
        out.update({f"weights/{name}": value for name, value in arrays.items()})
    pick = np.random.RandomState(0)
    for key, value in values.items():
        if key.startswith("grad/") and value.size > MAX_ENTRIES:
            index = np.sort(pick.choice(value.size, MAX_ENTRIES, replace=False)).astype(np.int32)
            out[key.replace("grad/", "index/", 1)] = index
            value = value.reshape(-1)[index]
        out[key] = np.asarray(value, np.float32)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{args.out}: {len(out)} arrays, {os.path.getsize(args.out) / 1e3:.0f} kB; "
          f"{sum(k.startswith('grad/') for k in out)} gradients")


if __name__ == "__main__":
    main()
