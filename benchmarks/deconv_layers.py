"""Forward+backward time of CAAE's stride-2 layers at 128x128, batch 100: TensorFlow's kernels against the GEMM forms
in face_aging/layers.py, and one whole CAAE training step. Prints one line per figure.

    python benchmarks/deconv_layers.py [--batch 100] [--repeats 3]
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from face_aging import layers  # noqa: E402


def timed(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def fwd_bwd(op, x, w):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            y = op(x, w)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    b = args.batch
    print(f"machine: {os.cpu_count()} cores, TensorFlow {tf.__version__}, batch {b}")
    for side, cin, cout in ((4, 1024, 512), (8, 512, 256)):
        x = tf.Variable(tf.random.uniform([b, side, side, cin]))
        w = tf.Variable(tf.random.normal([5, 5, cout, cin]) * 0.02)
        flops = 3 * 2 * b * side * side * 25 * cin * cout
        stock = lambda x, w: tf.nn.conv2d_transpose(x, w, [b, 2 * side, 2 * side, cout], 2, "SAME")  # noqa: E731
        for name, op in (("tensorflow", stock), ("gemm", layers.conv2d_transpose_same_stride2_gemm)):
            dt = timed(fwd_bwd(op, x, w), args.repeats)
            print(f"deconv {side}x{side}x{cin}->{2 * side}x{2 * side}x{cout} {name:>10}: {dt:.3f} s "
                  f"{flops / dt / 1e9:.0f} GFLOP/s")
    for side, cin, cout in ((8, 512, 1024), (16, 256, 512)):
        x = tf.Variable(tf.random.uniform([b, side, side, cin]))
        w = tf.Variable(tf.random.normal([5, 5, cin, cout]) * 0.02)
        flops = 3 * 2 * b * (side // 2) ** 2 * 25 * cin * cout
        for name, op in (("tensorflow", lambda x, w: tf.nn.conv2d(x, w, 2, "SAME")),
                         ("gemm", layers.conv2d_same_stride2_gemm)):
            dt = timed(fwd_bwd(op, x, w), args.repeats)
            print(f"conv {side}x{side}x{cin}->{side // 2}x{side // 2}x{cout} {name:>10}: {dt:.3f} s "
                  f"{flops / dt / 1e9:.0f} GFLOP/s")
    from face_aging.models.caae.config import CAAEConfig
    from face_aging.models.caae.model import CAAE
    from face_aging.data.labels import plus_minus_one_hot
    images = tf.random.uniform([b, 128, 128, 3], -1, 1)
    ages = plus_minus_one_hot(np.arange(b) % 10, 10)
    genders = plus_minus_one_hot(np.arange(b) % 2, 2)
    weights = tf.constant([1e-4, 0.0, 0.0])
    for name, small_map in (("tensorflow layers", 0), ("gemm small-map layers", layers.SMALL_MAP)):
        layers.SMALL_MAP = small_map  # read when the step is traced
        model = CAAE(CAAEConfig(image_size=128))
        dt = timed(lambda: model.train_step(images, ages, genders, weights)[0]["EG_loss"].numpy(), args.repeats)
        print(f"CAAE 128x128 training step, {name}: {dt:.2f} s, {b / dt:.1f} images/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
