"""README's front figure: a real face aged by the bundled models, made with the package's own test mode.

The face is scikit-image's astronaut photo (Eileen Collins, NASA; public domain), not a UTKFace face: the bundled
models are trained on UTKFace, which may not be redistributed, so none of its faces is committed here. The script
runs what a user runs on a photo,

    python main.py --model combined|pagan|caae --is_train False --testdir DIR --ages ... --align auto

with the bundled models (it checks that test mode says so), reads the NAME_ages.png strips test mode writes (the
aligned face, then the face at each age, all at the face's own resolution in the photo) and lays them out, labelled,
in one PNG. Nothing is resized: the tiles are the pixels test mode wrote.

    python scripts/front_figure.py                   # writes docs/figures/front.png
    python scripts/front_figure.py --out /tmp/f.png

Needs the photos extra (MTCNN finds the face: pip install -r requirements-photos.txt, or pip install
"face-aging[photos]") and scikit-image for the photo (pip install scikit-image; no requirements file lists it, as
nothing else uses it). About a minute on 2 CPU cores: four runs of test mode, each starting TensorFlow.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "docs", "figures", "front.png")
NAME = "astronaut"

# The columns, ages in years. PAGAN only ages: its row leaves the ages at or below the face's own empty rather than
# repeat the photo's face.
AGES = (25, 45, 60, 75)

# (row label, main.py flags, the console line that shows the bundled model was used)
ROWS = (
    ("CAAE + PAGAN (bundled)", ["--model", "combined"], "the bundled generator pagan_utkface128"),
    ("PAGAN (bundled)", ["--model", "pagan"], "the bundled generator pagan_utkface128"),
    ("CAAE (bundled)", ["--model", "caae"], "the bundled model caae_utkface64"),
    ("CAAE, --noghost_guard", ["--model", "caae", "--noghost_guard"], "the bundled model caae_utkface64"),
)

GAP = 4
LABEL_WIDTH = 190
HEADER = 26
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
GREY = (110, 110, 110)


def astronaut_photo(folder):
    try:
        from skimage import data
    except ImportError:
        sys.exit("scripts/front_figure.py needs scikit-image for its photo: pip install scikit-image")
    path = os.path.join(folder, f"{NAME}.png")
    Image.fromarray(data.astronaut()).save(path)
    return path


def run_test_mode(flags, ages, testdir, savedir, expect):
    """Test mode through main.py, as a user runs it; returns (tiles, faces.json's entry for the face).

    The working directory is a fresh folder, so a run or an original TF1 checkpoint lying in the clone
    (save/, checkpoints/caae/model-init) cannot stand in for the bundled model."""
    command = [sys.executable, os.path.join(REPO, "main.py"), *flags, "--is_train", "False", "--testdir", testdir,
               "--ages", ",".join(str(a) for a in ages), "--align", "auto", "--savedir", savedir]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, cwd=os.path.dirname(savedir), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    if expect not in done.stdout + done.stderr:
        sys.exit(f"{' '.join(flags)}: test mode did not use the bundled model (no {expect!r} on its console)")
    test = os.path.join(savedir, "test")
    strip = np.asarray(Image.open(os.path.join(test, f"{NAME}_ages.png")).convert("RGB"))
    side = strip.shape[0]
    assert strip.shape[1] == side * (len(ages) + 1), strip.shape  # the input, then one face per age
    tiles = [Image.fromarray(strip[:, i * side:(i + 1) * side]) for i in range(len(ages) + 1)]
    with open(os.path.join(test, "faces.json")) as f:
        (face,) = json.load(f)
    return tiles, face


def font(size):
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font of its own
    except TypeError:
        return ImageFont.load_default()


def compose(rows, side):
    """rows: [(label lines, [tile or None per column])]; the photo's face first, then AGES."""
    columns = 1 + len(AGES)
    width = LABEL_WIDTH + columns * (side + GAP)
    height = HEADER + len(rows) * (side + GAP)
    figure = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(figure)
    big, small = font(15), font(12)
    for c, title in enumerate(["photo"] + [f"{a} years" for a in AGES]):
        x = LABEL_WIDTH + c * (side + GAP)
        draw.text((x + side / 2, HEADER / 2), title, fill=INK, font=big, anchor="mm")
    for r, (lines, tiles) in enumerate(rows):
        y = HEADER + r * (side + GAP)
        draw.text((8, y + 10), lines[0], fill=INK, font=big)
        for k, line in enumerate(lines[1:]):
            draw.text((8, y + 32 + 17 * k), line, fill=GREY, font=small)
        for c, tile in enumerate(tiles):
            x = LABEL_WIDTH + c * (side + GAP)
            if tile is None:
                draw.rectangle((x, y, x + side - 1, y + side - 1), fill=(240, 240, 240))
                draw.multiline_text((x + side / 2, y + side / 2), "PAGAN\nonly ages", fill=GREY,
                                    font=small, anchor="mm", align="center")
            else:
                figure.paste(tile, (x + (side - tile.size[0]) // 2, y + (side - tile.size[1]) // 2))
    return figure


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT, help="the PNG to write (default: docs/figures/front.png)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="front_figure_") as tmp:
        photos = os.path.join(tmp, "photos")
        os.makedirs(photos)
        astronaut_photo(photos)
        rows, side = [], 0
        for label, flags, expect in ROWS:
            pagan = flags[1] == "pagan"
            tiles, face = run_test_mode(flags, AGES, photos, os.path.join(tmp, f"run{len(rows)}"), expect)
            if pagan:
                tiles = tiles[:1] + [None if age <= face["age"] else tile for age, tile in zip(AGES, tiles[1:])]
            # Each model aligns the face to its own crop (PAGAN: eye-aligned, CAAE: a UTKFace chip), so the sides
            # may differ by a pixel or two and the estimated age differs a little; cells take the largest side and
            # each tile sits in its cell's centre, unresized.
            side = max(side, tiles[0].size[0])
            lines = [label, f"age now: {face['age']:.0f} ({face['age_from']})"]
            if not pagan:  # PAGAN has no gender label
                lines.append(f"aged as {face['gender']} ({face['gender_from']})")
            rows.append((lines, tiles))
        figure = compose(rows, side)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        figure.save(args.out, optimize=True)
    print(f"{args.out}: {figure.size[0]}x{figure.size[1]}, {os.path.getsize(args.out) / 1024:.0f} KB; "
          f"faces at {side} px, the photo's own resolution")


if __name__ == "__main__":
    main()
