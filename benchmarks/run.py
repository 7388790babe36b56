"""The speed benchmarks, one command: one line per figure (images/s, GFLOP/s, fraction of the same-run matmul
ceiling, peak RSS).

    python benchmarks/run.py                       # everything, on a JPEG folder it makes itself
    python benchmarks/run.py --data ../shared/data/utkface --only pipeline,caae_train
    python benchmarks/run.py --quick               # fewer steps (a smoke run, figures noisier)

Figures:
  ceiling         TensorFlow matmul, float32 and bfloat16: 4096x4096 (the speed issue's reference) and the best of
                  1024/2048/4096 (on some CPUs oneDNN is slower at 4096 than at 2048). Measured first and last; the
                  ratios use the mean of the two runs, against the best size (the stricter ceiling).
  caae_train      CAAE training step, 128x128, batch 100, for each --precisions (plus float32 with XLA).
                  `mixed_bfloat16/native` and `mixed_bfloat16/float32` force how bfloat16 layers run on a CPU
                  (FACE_AGING_CPU_BF16, face_aging/layers.py: TensorFlow's bfloat16 kernels, or the matmul form
                  and float32 kernels); plain `mixed_bfloat16` lets the CPU's flags choose (native with AMX).
  original_train  the original TF1 code's training step (--original: a checkout of ZZUTK/Face-Aging-CAAE; its graph
                  run under tf.compat.v1 as scripts/original_gradients.py does), same size and batch, float32, and
                  each caae_train figure of the run as a multiple of it.
  caae_infer      one face to all 10 age groups at 128x128, after warm-up (median of 20).
  bundled_test    test mode with the bundled CAAE (face_aging/pretrained) on 10 rendered 256x256 face JPEGs: the model's
                  time for one face to ten ages in years (median over the faces, after warm-up), and the whole of
                  test mode (read, estimate gender and age, age, write the grids, a 256-px strip of ten ages, a GIF
                  and a --target_age face each) per face, models loaded.
  pagan_bundled_test  the same with the bundled PAGAN generators (face_aging/pretrained/pagan_utkface128): the three
                  generators on one face (median after warm-up), and the whole of test mode (the strip of ten ages,
                  the progression, the overview, a GIF and a --target_age face) per face.
  combined_bundled_test  the same with --model combined (both bundled models; faces of 20-29 years, so ages above
                  their own go to PAGAN, the others to the CAAE): one face to ten ages, and the whole of test mode.
  video_caae      test mode on a video (face_aging.inference.video): a rendered 1280x720 clip of 60 frames at 30 fps
                  with one face moving slightly and an AAC sound track, aged to 70 by the bundled CAAE, end to end
                  (decode, follow the face, age, blend, encode, sound copied), after a warm-up clip: frames a second,
                  the flicker ratio (docs/test_mode.md#videos), and whether frame count, rate and sound read back
                  equal to the input's.
  video_pagan     the same with the bundled PAGAN generators (70 needs the 51+ generator alone).
                  --video_sway 0 holds the face still (only the codec's noise changes it), the hardest case for
                  flicker; the default sways it 2% of the width.
  pipeline        the training input pipeline (decode, resize, batch) on a JPEG folder, 128x128, batch 100.
  scan            the checks of a training folder before the run starts, on a JPEG folder: header and tail of every
                  file (pipeline.check_image), the full decode of every file (decode_check, 128x128) without its
                  cache, and again with the cache the first one wrote (a resumed run).
  pagan_train     PAGAN training step, 224x224, batch 8, both VGG-16 judges at full width (random weights), for
                  each precision.

GFLOP per image counts every convolution and matmul of the forward passes (TensorFlow's own FLOP statistics), times 3
for layers that are trained (forward, data gradient, weight gradient) and times 2 for the frozen judges on the path
of G's gradient. Each benchmark runs in its own process, so peak RSS is that benchmark's.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def _setup():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, REPO)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats, warmup=1):
    """Seconds per call of fn() (each call must block until its result is ready)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def forward_flops(fn, *specs):
    """FLOPs of one call of fn on inputs of `specs`, from TensorFlow's per-op statistics of the traced graph."""
    import tensorflow as tf
    from tensorflow.python.framework import ops as tf_ops
    graph = tf.function(fn).get_concrete_function(*specs).graph
    total = 0
    for op in graph.get_operations():
        try:
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
        except (ValueError, KeyError, TypeError):
            pass
    return total


# ----------------------------------------------------------------------------------------------------------- children

def bench_ceiling(args):
    import tensorflow as tf
    out = {}
    for dtype in ("float32", "bfloat16"):
        best = 0.0
        for n in (1024, 2048, 4096):
            a = tf.cast(tf.random.normal([n, n]), dtype)
            matmul = tf.function(lambda a: tf.matmul(a, a))
            t = min(timed(lambda: matmul(a).numpy(), 3 if n == 4096 else 5))
            gflops = 2 * n ** 3 / t / 1e9
            best = max(best, gflops)
            if n == 4096:
                out[f"{dtype}_4096"] = gflops
        out[f"{dtype}_best"] = best
    return out


def _caae_batch(batch, size):
    import numpy as np
    import tensorflow as tf
    rs = np.random.RandomState(0)
    return (tf.constant(rs.uniform(-1, 1, [batch, size, size, 3]).astype("float32")),
            tf.constant(np.eye(10, dtype="float32")[rs.randint(0, 10, batch)] * 2 - 1),
            tf.constant(np.eye(2, dtype="float32")[rs.randint(0, 2, batch)] * 2 - 1))


def _caae_specs(model, size):
    """Input specs of one face: image, age labels, gender labels, code z."""
    import tensorflow as tf
    return (tf.TensorSpec([1, size, size, 3]), tf.TensorSpec([1, 10]), tf.TensorSpec([1, 2]),
            tf.TensorSpec([1, model.config.z_dim]))


def caae_eg_flops(model, size):
    """FLOPs of E on one face and of G on one code, counted on the layers' training forms: the convolutions' own
    work (inference's phase convolution also multiplies zero taps, which is not useful work)."""
    img, age, gender, z = _caae_specs(model, size)
    return (forward_flops(lambda x: model.encoder(x, training=True), img),
            forward_flops(lambda z, a, g: model.generator(z, a, g, training=True), z, age, gender))


def caae_flops_per_image(model, size):
    img, age, gender, z = _caae_specs(model, size)
    forward = (sum(caae_eg_flops(model, size))
               + 2 * forward_flops(lambda x, a, g: model.d_img(x, a, g, training=False), img, age, gender)
               + 2 * forward_flops(lambda z: model.d_z(z, training=False), z))
    return 3 * forward


def bench_caae_train(args):
    import tensorflow as tf
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import CAAE
    from face_aging.training.precision import for_training
    chosen, _ = for_training(args.precision)   # auto: what training would choose on this machine
    model = CAAE(CAAEConfig(image_size=args.image_size, precision=chosen, xla=args.xla))
    images, ages, genders = _caae_batch(args.batch_size, args.image_size)
    weights = tf.constant([1e-4, 0.0, 0.0])
    times = timed(lambda: float(model.train_step(images, ages, genders, weights)[0]["EG_loss"]), args.steps)
    seconds = statistics.median(times)
    flops = caae_flops_per_image(model, args.image_size)
    return {"seconds_per_step": seconds, "images_per_s": args.batch_size / seconds, "precision": chosen,
            "gflops": flops * args.batch_size / seconds / 1e9, "gflop_per_image": flops / 1e9}


def bench_original_train(args):
    """The original TF1 code's training step (its FaceAging graph under tf.compat.v1, as scripts/original_gradients.py
    runs it; three Adam steps on one fed batch, the original's weights 1e-4, 0, 0), float32, oneDNN as configured."""
    import numpy as np
    import tensorflow as tf
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    from original_gradients import load_original
    FaceAging = load_original(args.original)
    tf1 = tf.compat.v1
    with tf.Graph().as_default(), tf1.Session() as session:
        model = FaceAging(session, size_image=args.image_size, size_batch=args.batch_size, is_training=True,
                          save_dir=os.path.join("/tmp", "original_train_bench"))
        losses = (model.EG_loss + 1e-4 * model.G_img_loss, model.D_z_loss_prior + model.D_z_loss_z,
                  model.D_img_loss_input + model.D_img_loss_G)
        players = (model.E_variables + model.G_variables, model.D_z_variables, model.D_img_variables)
        with tf1.variable_scope("opt", reuse=tf1.AUTO_REUSE):   # as the original's train() makes them
            steps = [tf1.train.AdamOptimizer(2e-4, beta1=0.5).minimize(loss, var_list=variables)
                     for loss, variables in zip(losses, players)]
        session.run(tf1.global_variables_initializer())
        rng = np.random.default_rng(0)
        n, size = args.batch_size, args.image_size
        feed = {model.input_image: rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
                model.age: np.eye(10, dtype="float32")[rng.integers(0, 10, n)] * 2 - 1,
                model.gender: np.eye(2, dtype="float32")[rng.integers(0, 2, n)] * 2 - 1,
                model.z_prior: rng.uniform(-1, 1, (n, 50)).astype("float32")}
        times = timed(lambda: session.run(steps + [model.EG_loss], feed), args.steps)
    seconds = statistics.median(times)
    return {"seconds_per_step": seconds, "images_per_s": args.batch_size / seconds}


def bench_caae_infer(args):
    import numpy as np
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import AgingModel, gender_labels
    model = AgingModel(CAAEConfig(image_size=args.image_size))
    face = _caae_batch(1, args.image_size)[0].numpy()
    genders = gender_labels(0, 1)
    times = timed(lambda: model.age_progression(face, genders), 20, warmup=3)
    encoder, generator = caae_eg_flops(model, args.image_size)
    flops = encoder + 10 * generator
    seconds = statistics.median(times)
    return {"seconds_per_face": seconds, "best_seconds": min(times), "gflops": flops / seconds / 1e9,
            "images_per_s": 10 / seconds, "shape": list(np.shape(face))}


# Test mode's speed target (docs/photos.md): ten ages, faces 256 px in their photos (outputs at 256 px).
TEST_SIDE = 256
TEN_AGES = (10, 18, 25, 32, 38, 45, 52, 60, 70, 80)


def time_test_mode(faces, **option_values):
    """Whole test mode (run_test, loading its model as a user's run does) on the first face, the first 10 and all 20,
    after a warm-up run: seconds per face of the 10-face run, of the 1-face run (loading and tracing the networks,
    paid once per run however many faces it has, and one face), and of each face past the tenth ((t20 - t10) / 10)."""
    from PIL import Image
    from face_aging.inference.testmode import TestOptions, run_test
    with tempfile.TemporaryDirectory() as tmp:
        seconds = {}
        for count in (10, 1, 20):
            folder = os.path.join(tmp, f"faces{count}")
            os.makedirs(folder)
            for k, face in enumerate(faces[:count]):
                Image.fromarray(face).save(os.path.join(folder, f"face{k}.jpg"), quality=95)
            options = TestOptions(testdir=folder, savedir=os.path.join(tmp, f"run{count}"), target_age=60,
                                  ages=TEN_AGES, gif=True, align="off", **option_values)
            if count == 10:
                run_test(options)                          # warm-up: traces every shape once
            start = time.perf_counter()
            run_test(options)
            seconds[count] = time.perf_counter() - start
    return {"test_mode_seconds_per_face": seconds[10] / 10, "test_mode_each_face": (seconds[20] - seconds[10]) / 10,
            "test_mode_one_face": seconds[1]}


def bench_bundled_test(args):
    import numpy as np
    from PIL import Image
    from face_aging.models.caae import bundled
    from face_aging.models.caae.infer import restore_aging_model
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import gender_labels
    from face_aging.data.synthetic import make_person, render_face
    from face_aging.data.pipeline import scale_to_unit
    config = CAAEConfig(**bundled.architecture())
    model, _ = restore_aging_model(config, "/nonexistent-run")
    faces = [render_face(make_person(k, seed=3), 20 + 5 * (k % 10), TEST_SIDE) for k in range(20)]
    small = [scale_to_unit(np.asarray(Image.fromarray(f).resize((config.image_size,) * 2, Image.LANCZOS))).numpy()
             for f in faces[:10]]
    genders = gender_labels(0, 1)
    # As test mode makes them by default with the bundled model: residual aging at its card's strength.
    own = np.array([25.0])
    for face in small[:3]:
        model.age_faces(face[None], TEN_AGES, genders, model.residual, own)      # warm-up (tracing)
    per_face = [timed(lambda f=f: model.age_faces(f[None], TEN_AGES, genders, model.residual, own), 1, warmup=0)[0]
                for f in small]
    return {"seconds_per_face": statistics.median(per_face), "best_seconds": min(per_face),
            **time_test_mode(faces, config=config), "image_size": config.image_size, "output_size": TEST_SIDE}


def bench_combined_bundled_test(args):
    """--model combined with the bundled CAAE and PAGAN: one face (ages 20-29 as its own) to ten ages through the
    Ager, then whole test mode on 10 faces, as bench_bundled_test."""
    import numpy as np
    from PIL import Image
    from face_aging.data.pipeline import scale_to_unit
    from face_aging.data.synthetic import make_person, render_face
    from face_aging.inference.agers import load_ager
    ager = load_ager("combined", "/nonexistent-run")
    faces = [render_face(make_person(k, seed=3), 20 + k % 10, TEST_SIDE) for k in range(20)]
    small = [scale_to_unit(np.asarray(Image.fromarray(f).resize((ager.size,) * 2, Image.LANCZOS))).numpy()
             for f in faces[:10]]
    for k, face in enumerate(small[:3]):
        ager.age(face[None], [0], [20.0 + k], TEN_AGES)                     # warm-up (tracing)
    per_face = [timed(lambda f=f, k=k: ager.age(f[None], [0], [20.0 + k], TEN_AGES), 1, warmup=0)[0]
                for k, f in enumerate(small)]
    # The same faces taken for children of 5: the CAAE makes a young adult, PAGAN ages it on (combined.CHAIN_AGE).
    ager.age(small[0][None], [0], [5.0], TEN_AGES)                          # warm-up
    per_child = [timed(lambda f=f: ager.age(f[None], [0], [5.0], TEN_AGES), 1, warmup=0)[0] for f in small]
    return {"seconds_per_face": statistics.median(per_face), "best_seconds": min(per_face),
            "child_seconds_per_face": statistics.median(per_child),
            **time_test_mode(faces, model="combined"), "image_size": ager.size, "output_size": TEST_SIDE}


def bench_pagan_bundled_test(args):
    import numpy as np
    import tensorflow as tf
    from PIL import Image
    from face_aging.data.synthetic import make_person, render_face
    from face_aging.models.pagan.infer import load_generators
    generators = load_generators("/nonexistent-run")
    size = max(config.image_size for _, config, _ in generators.values())
    faces = [render_face(make_person(k, seed=3), 20 + k % 10, TEST_SIDE) for k in range(20)]
    small = [tf.constant(np.asarray(Image.fromarray(f).resize((size, size), Image.LANCZOS), np.float32)[None]
                         / 127.5 - 1) for f in faces[:10]]

    def all_clusters(face):
        for generator, _, _ in generators.values():
            generator(face, training=False).numpy()
    for face in small[:3]:
        all_clusters(face)                                 # warm-up
    per_face = [timed(lambda f=f: all_clusters(f), 1, warmup=0)[0] for f in small]
    return {"seconds_per_face": statistics.median(per_face), "best_seconds": min(per_face),
            **time_test_mode(faces, model="pagan"), "image_size": size, "clusters": sorted(generators),
            "output_size": TEST_SIDE}


VIDEO_SIZE = (1280, 720)


def bench_video(args):
    """A 720p clip through age_video with a bundled model (args.video_model)."""
    import av
    from face_aging.data.synthetic_video import render_clip
    from face_aging.inference import flicker
    from face_aging.inference.agers import load_ager
    from face_aging.inference.faceinfo import bundled_estimator as load_estimator
    from face_aging.inference.video import VideoOptions, age_video
    ager = load_ager(args.video_model, "/nonexistent-run")
    width, height = VIDEO_SIZE
    options = VideoOptions(ages=(70,))

    def read_back(path):
        with av.open(path) as container:
            stream = container.streams.video[0]
            return (sum(1 for _ in container.decode(stream)), stream.average_rate,
                    [(s.codec_context.name, s.frames) for s in container.streams.audio])

    with tempfile.TemporaryDirectory() as tmp:
        warm = render_clip(os.path.join(tmp, "warm.mp4"), width, height, frames=8, rate=30, persons=(2,),
                           face_side=400)
        age_video(warm.path, ager, tmp, options, load_estimator=load_estimator)   # traces every function once
        clip = render_clip(os.path.join(tmp, "clip.mp4"), width, height, frames=args.video_frames, rate=30,
                           persons=(2,), face_side=400, sound="aac", amplitude=args.video_sway)
        result = age_video(clip.path, ager, tmp, options, load_estimator=load_estimator)
        ratio, before, after = flicker.flicker_ratio(clip.path, result.outputs[70], clip.boxes)
        same = read_back(clip.path) == read_back(result.outputs[70])
    return {"fps": result.frames / result.seconds, "seconds": result.seconds, "frames": result.frames,
            "sway": args.video_sway, "flicker": ratio, "change_in": before, "change_out": after,
            "detections": result.detections, "read_back_equal": same, "size": f"{width}x{height}"}


def bench_pipeline(args):
    from face_aging.data.pipeline import FaceDataset, scan_labelled_folder
    faces = scan_labelled_folder(args.folder)
    data = FaceDataset(faces, args.image_size, args.batch_size, num_vis=1)
    batches = min(data.steps_per_epoch, args.pipeline_batches)
    count = 0
    # The first batch pays for building the pipeline and starting its threads; it is not timed.
    iterator = iter(data.epoch(0))
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches - 1):
        images, _, _ = next(iterator)
        count += int(images.shape[0])
    seconds = time.perf_counter() - start
    return {"images_per_s": count / seconds, "images": count, "folder_faces": len(faces)}


def bench_scan(args):
    from face_aging.data.decode_check import undecodable
    from face_aging.data.pipeline import check_image, list_image_files
    paths = list_image_files(args.folder)
    start = time.perf_counter()
    for path in paths:
        check_image(path)
    header = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "decoded_files.json")
        start = time.perf_counter()
        failed = undecodable(paths, args.image_size, cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        undecodable(paths, args.image_size, cache)
        warm = time.perf_counter() - start
    return {"files": len(paths), "header_s": header, "decode_s": cold, "cached_s": warm, "failed": len(failed)}


def bench_pagan_train(args):
    import numpy as np
    import tensorflow as tf
    from face_aging.training import precision as mp
    from face_aging.models.pagan.config import PAGANConfig
    from face_aging.models.pagan.model import PAGAN
    from face_aging.models.pagan.vgg import VGG16
    size, batch = args.pagan_size, args.pagan_batch
    phi_age = VGG16(4, image_size=size, name="phi_age")
    phi_id = VGG16(2622, image_size=size, name="vgg_face")
    for net in (phi_age, phi_id):
        net(tf.zeros([1, size, size, 3]))
    config = PAGANConfig(image_size=size, precision=args.precision, xla=args.xla)
    model = PAGAN(config, phi_age, phi_id)
    rs = np.random.RandomState(0)
    young, old = (tf.constant(rs.uniform(-1, 1, [batch, size, size, 3]).astype("float32")) for _ in range(2))
    times = timed(lambda: float(model.train_step(young, old)[0]["L_G"]), args.pagan_steps)
    seconds = statistics.median(times)
    img = tf.TensorSpec([1, size, size, 3])
    with mp.policy("float32"):
        g = forward_flops(lambda x: model.generator(x, training=True), img)  # training forms, as for CAAE
        d = forward_flops(lambda x: model.discriminator(phi_age.taps(x), training=False), img) - forward_flops(
            lambda x: phi_age.taps(x), img)
        age = forward_flops(lambda x: phi_age.taps(x), img)
        ident = forward_flops(lambda x: phi_id.descriptor(x, layer=config.identity_layer), img)
    # Per young face: G (trained, x3); D on old, generated, young (x3); phi_age on the three (x1) plus its data
    # gradient on the generated batch (x1); VGG-Face on young and generated (x1) plus its data gradient (x1).
    flops = 3 * g + 3 * 3 * d + 4 * age + 3 * ident
    return {"seconds_per_step": seconds, "images_per_s": batch / seconds, "gflops": flops * batch / seconds / 1e9,
            "gflop_per_image": flops / 1e9}


CHILDREN = {"ceiling": bench_ceiling, "caae_train": bench_caae_train, "original_train": bench_original_train,
            "caae_infer": bench_caae_infer,
            "bundled_test": bench_bundled_test, "pagan_bundled_test": bench_pagan_bundled_test,
            "combined_bundled_test": bench_combined_bundled_test,
            "pipeline": bench_pipeline, "pagan_train": bench_pagan_train, "video": bench_video,
            "scan": bench_scan}


def child_main(args):
    _setup()
    result = CHILDREN[args.child](args)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


# ------------------------------------------------------------------------------------------------------------ parent

def run_child(name, args, **extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--image_size", str(args.image_size),
           "--batch_size", str(args.batch_size), "--steps", str(args.steps), "--folder", args.folder or "",
           "--pagan_size", str(args.pagan_size), "--pagan_batch", str(args.pagan_batch),
           "--pagan_steps", str(args.pagan_steps), "--pipeline_batches", str(args.pipeline_batches),
           "--video_model", args.video_model, "--video_frames", str(args.video_frames),
           "--video_sway", str(args.video_sway), "--original", args.original or ""]
    for key, value in extra.items():
        if value is True:
            cmd.append(f"--{key}")
        elif value not in (None, False):
            cmd += [f"--{key}", str(value)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    precision = extra.get("precision") or ""
    if "/" in precision:   # mixed_bfloat16/native: the layers' CPU form forced (face_aging/layers.py)
        cmd[cmd.index("--precision") + 1], env["FACE_AGING_CPU_BF16"] = precision.split("/")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark {name} {extra} failed:\n{done.stderr[-3000:]}")


def make_jpeg_folder(n, folder):
    _setup()
    from face_aging.data.synthetic import write_utkface_folder
    write_utkface_folder(folder, n, 200, seed=5)   # UTKFace's 200x200 chips
    return folder


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
            f.seek(0)
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, {' '.join(simd) or 'no AVX2'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="ceiling,caae_train,caae_infer,bundled_test,pagan_bundled_test,video_caae,"
                                          "video_pagan,pipeline,scan,pagan_train")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--data", default="", help="a folder of JPEG faces for the pipeline (default: make 2,000)")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--original", default="", help="original_train: a checkout of ZZUTK/Face-Aging-CAAE")
    parser.add_argument("--no_xla", action="store_true", help="skip the XLA variant of CAAE training")
    # child-process arguments
    parser.add_argument("--child", default="")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--folder", default="")
    parser.add_argument("--pagan_size", type=int, default=224)
    parser.add_argument("--pagan_batch", type=int, default=8)
    parser.add_argument("--pagan_steps", type=int, default=0)
    parser.add_argument("--pipeline_batches", type=int, default=20)
    parser.add_argument("--video_model", default="caae")
    parser.add_argument("--video_frames", type=int, default=60, help="frames of the video benchmarks' clip")
    parser.add_argument("--video_sway", type=float, default=0.02,
                        help="how far the video benchmarks' face sways, as a fraction of the width (0: still)")
    args = parser.parse_args()
    args.steps = args.steps or (2 if args.quick else 4)
    args.pagan_steps = args.pagan_steps or (2 if args.quick else 4)
    if args.child:
        return child_main(args)

    only = args.only.split(",")
    precisions = args.precisions.split(",")
    print(f"# {machine()}; {time.strftime('%Y-%m-%d %H:%M')}")
    ceilings = []

    def ceiling():
        c = run_child("ceiling", args)
        ceilings.append(c)
        print(f"ceiling matmul float32: {c['float32_4096']:.0f} GFLOP/s at 4096, best {c['float32_best']:.0f}; "
              f"bfloat16: {c['bfloat16_4096']:.0f} at 4096, best {c['bfloat16_best']:.0f}; "
              f"peak RSS {c['peak_rss_mb']:.0f} MB", flush=True)

    def ratio(gflops, dtype):
        if not ceilings:
            return ""
        best = statistics.mean(c[f"{dtype}_best"] for c in ceilings)
        at4096 = statistics.mean(c[f"{dtype}_4096"] for c in ceilings)
        return f", {gflops / best:.2f} of the {dtype} ceiling ({gflops / at4096:.2f} of its 4096 matmul)"

    def dtype_of(precision):
        return "bfloat16" if "mixed_bfloat16" in precision else "float32"

    if "ceiling" in only:
        ceiling()
    train_rate = {}
    if "caae_train" in only:
        variants = [(p, False) for p in precisions] + ([] if args.no_xla else [("float32", True)])
        for precision, xla in variants:
            r = run_child("caae_train", args, precision=precision, xla=xla)
            train_rate[(precision, xla)] = r["images_per_s"]
            if precision == "auto":
                precision = f"auto ({r['precision']})"
                train_rate[(precision, xla)] = train_rate.pop(("auto", xla))
            print(f"caae_train {precision}{' xla' if xla else ''} {args.image_size}x{args.image_size} batch "
                  f"{args.batch_size}: {r['images_per_s']:.1f} images/s ({r['seconds_per_step']:.2f} s/step), "
                  f"{r['gflops']:.0f} GFLOP/s at {r['gflop_per_image']:.1f} GFLOP/image"
                  f"{ratio(r['gflops'], dtype_of(precision))}, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "original_train" in only:
        if not args.original:
            sys.exit("original_train needs --original: a checkout of ZZUTK/Face-Aging-CAAE")
        r = run_child("original_train", args)
        print(f"original_train (the TF1 code, float32) {args.image_size}x{args.image_size} batch {args.batch_size}: "
              f"{r['images_per_s']:.1f} images/s ({r['seconds_per_step']:.2f} s/step), peak RSS "
              f"{r['peak_rss_mb']:.0f} MB", flush=True)
        for (precision, xla), rate in train_rate.items():
            print(f"  caae_train {precision}{' xla' if xla else ''} against it: {rate / r['images_per_s']:.2f}x",
                  flush=True)
    if "caae_infer" in only:
        r = run_child("caae_infer", args)
        print(f"caae_infer {args.image_size}x{args.image_size}, one face to 10 age groups: {r['seconds_per_face']:.3f} s "
              f"(best {r['best_seconds']:.3f}), {r['gflops']:.0f} GFLOP/s{ratio(r['gflops'], 'float32')}, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    def test_mode_line(name, what):
        r = run_child(name, args)
        what = what.format(clusters=",".join(map(str, r.get("clusters", []))))
        print(f"{name} {r['image_size']}x{r['image_size']} ({what}: {r['seconds_per_face']:.4f} s (best "
              f"{r['best_seconds']:.4f}); whole test mode on 10 faces of {r['output_size']} px with ten --ages, "
              f"--target_age and --gif: {r['test_mode_seconds_per_face']:.3f} s per face (a run of one face "
              f"{r['test_mode_one_face']:.2f} s; each face past the tenth {r['test_mode_each_face']:.3f} s), peak RSS "
              f"{r['peak_rss_mb']:.0f} MB",
              flush=True)
        if "child_seconds_per_face" in r:
            print(f"  ... one face taken for a child of 5 (young adult by the CAAE, then PAGAN) to ten ages: "
                  f"{r['child_seconds_per_face']:.4f} s", flush=True)

    if "bundled_test" in only:
        test_mode_line("bundled_test", "the bundled CAAE), one face to ten ages")
    if "pagan_bundled_test" in only:
        test_mode_line("pagan_bundled_test", "the bundled PAGAN, clusters {clusters}), one face through every "
                                             "generator")
    if "combined_bundled_test" in only:
        test_mode_line("combined_bundled_test", "the bundled CAAE and PAGAN, --model combined), one face to ten ages")
    for model in ("caae", "pagan"):
        if f"video_{model}" not in only:
            continue
        args.video_model = model
        r = run_child("video", args)
        motion = f"swaying {r['sway']:.1%} of the width" if r["sway"] else "still"
        print(f"video_{model} {r['size']}, {r['frames']} frames, one face {motion}, to 70 with the bundled "
              f"{model.upper()}: {r['fps']:.1f} frames/s end to end ({r['seconds']:.1f} s, {r['detections']} full detections); "
              f"flicker {r['flicker']:.2f} (frame-to-frame change in the face {r['change_in']:.2f} -> "
              f"{r['change_out']:.2f} grey levels); frames, rate and sound read back "
              f"{'equal' if r['read_back_equal'] else 'DIFFERENT'}; peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "pipeline" in only:
        with tempfile.TemporaryDirectory() as tmp:
            folder = args.data or make_jpeg_folder(2000, os.path.join(tmp, "faces"))
            args.folder = folder
            r = run_child("pipeline", args)
        fastest = max(train_rate.values()) if train_rate else None
        versus = f", {r['images_per_s'] / fastest:.1f}x the fastest training above" if fastest else ""
        print(f"pipeline {args.image_size}x{args.image_size} batch {args.batch_size} on "
              f"{'--data ' + args.data if args.data else '2,000 synthetic 200x200 JPEGs'} "
              f"({r['folder_faces']} faces): {r['images_per_s']:.0f} images/s{versus}, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "scan" in only:
        with tempfile.TemporaryDirectory() as tmp:
            args.folder = args.data or make_jpeg_folder(2000, os.path.join(tmp, "faces"))
            r = run_child("scan", args)
        n = r["files"]
        print(f"scan of {'--data ' + args.data if args.data else '2,000 synthetic 200x200 JPEGs'} ({n} files): "
              f"header and tail {r['header_s']:.1f} s ({1e3 * r['header_s'] / n:.2f} ms/file); full decode "
              f"{r['decode_s']:.1f} s ({1e3 * r['decode_s'] / n:.2f} ms/file, {r['failed']} failed); cached "
              f"{r['cached_s']:.2f} s; peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "pagan_train" in only:
        for precision in precisions:
            r = run_child("pagan_train", args, precision=precision)
            print(f"pagan_train {precision} {args.pagan_size}x{args.pagan_size} batch {args.pagan_batch}: "
                  f"{r['images_per_s']:.2f} images/s ({r['seconds_per_step']:.2f} s/step), {r['gflops']:.0f} GFLOP/s "
                  f"at {r['gflop_per_image']:.1f} GFLOP/image{ratio(r['gflops'], dtype_of(precision))}, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if "ceiling" in only:
        ceiling()


if __name__ == "__main__":
    main()
