"""Measure a face template: the median MTCNN landmarks of already aligned face crops, in units of the crop side.

    python scripts/measure_template.py DIR [--limit N]

Reads N images spread evenly over DIR's sorted file list (UTKFace names sort by age, so every age is sampled),
prints the per-landmark medians and spreads, the template as Python, and how far each crop lies from that template
(the numbers behind align.ChipTolerance). CAAE_TEMPLATE in align.py was made this way from UTKFace's chips.
"""

import argparse
import os
import sys

import numpy as np

from face_aging.data.pipeline import check_image, decode_rgb, list_image_files, printable
from face_aging.faces import align, detect


def sample(paths, limit):
    """`limit` paths spread evenly over `paths` (all of them if there are fewer)."""
    if limit >= len(paths):
        return list(paths)
    return [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]


def measure(paths):
    """(landmarks [N, 5, 2] in units of each image's width/height, image shapes, counts of misses and of images
    where more than one face was found). With several faces the most confident one is the crop's."""
    found, shapes, missed, several = [], [], 0, 0
    for path in paths:
        if check_image(path):
            missed += 1
            continue
        with open(path, "rb") as f:
            image = decode_rgb(f.read()).numpy()
        faces = detect.detect_faces(image)
        if not faces:
            missed += 1
            continue
        several += len(faces) > 1
        face = max(faces, key=lambda f: f.confidence)
        height, width = image.shape[:2]
        found.append(face.landmarks / [width, height])
        shapes.append((height, width))
    return np.array(found), shapes, missed, several


def report(paths, points, shapes, missed, several):
    lines = [f"{len(points)} of {len(paths)} images measured ({missed} without a face at confidence >= 0.9, "
             f"{several} with more than one face: the most confident used)",
             "landmark       median x  median y   IQR x          IQR y",
             ]
    median = np.median(points, axis=0)
    q25, q75 = np.percentile(points, 25, axis=0), np.percentile(points, 75, axis=0)
    for i, name in enumerate(detect.LANDMARKS):
        lines.append(f"{name:<13}  {median[i, 0]:.4f}    {median[i, 1]:.4f}    "
                     f"{q25[i, 0]:.3f}-{q75[i, 0]:.3f}    {q25[i, 1]:.3f}-{q75[i, 1]:.3f}")
    eye_distance = np.hypot(*(points[:, 1] - points[:, 0]).T)
    lines.append(f"eye distance / side: median {np.median(eye_distance):.4f}, "
                 f"IQR {np.percentile(eye_distance, 25):.3f}-{np.percentile(eye_distance, 75):.3f}")
    template = align.Template("measured", median, "")
    poses = np.array([align.chip_pose(shape, p * [shape[1], shape[0]], template) for p, shape in zip(points, shapes)])
    lines.append("distance of each crop from the median template (align.chip_pose):")
    for column, name in enumerate(("|size - 1|", "|degrees|", "shift/side")):
        values = np.abs(poses[:, column] - (1.0 if column == 0 else 0.0))
        lines.append(f"  {name:<11} median {np.median(values):.3f}  95% {np.percentile(values, 95):.3f}  "
                     f"99% {np.percentile(values, 99):.3f}  max {values.max():.3f}")
    passing = sum(align.looks_like_chip(shape, detect.Face((0, 0, 0, 0), 1.0, p * [shape[1], shape[0]]), template)
                  for p, shape in zip(points, shapes))
    lines.append(f"looks_like_chip with the default tolerance: {passing} of {len(points)}")
    rows = ",\n".join(f"    [{x:.4f}, {y:.4f}]" for x, y in median)
    lines.append(f"points = np.array([\n{rows},\n])")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="folder of aligned face crops (e.g. UTKFace's aligned & cropped chips)")
    parser.add_argument("--limit", type=int, default=500, help="images to measure, spread over the folder")
    args = parser.parse_args(argv)
    try:
        paths = sample(list_image_files(args.dir), args.limit)
    except OSError as error:
        sys.exit(f"{printable(args.dir)}: cannot be listed ({error.strerror or error})")
    if not paths:
        sys.exit(f"{printable(args.dir)}: no .jpg/.jpeg/.png files")
    points, shapes, missed, several = measure(paths)
    if not len(points):
        sys.exit(f"{printable(args.dir)}: no face found in {len(paths)} images")
    print(f"python scripts/measure_template.py {printable(os.path.abspath(args.dir))} --limit {args.limit}")
    print(report(paths, points, shapes, missed, several))


if __name__ == "__main__":
    main()
