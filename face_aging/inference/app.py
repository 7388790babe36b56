"""A local web page that ages a photo or a video: `python main.py --model caae --serve` (or `--model pagan`,
`--model combined`).

Upload a photo, see the faces found with each one's gender and age now as the bundled estimator sees them (both
editable), choose a face and the target ages in years, and get the aligned face, the aged faces side by side, a GIF
through the years and the photo with the aged face pasted back, each at the face's own resolution and downloadable.
Every step is test mode's own (face_aging.inference.testmode, faces), through the model's Ager
(face_aging/models/ager.py) loaded once when the server starts; the CAAE ages residually with the model's strength,
as test mode does by default. The Video tab (page_video) ages every face of a clip as test mode does, with a progress
bar, and offers the aged clips.

The page is Gradio's, an optional extra (requirements-app.txt): this module imports gradio only inside the functions
that build and start the page, so the package and its other commands work without it. The server listens on
127.0.0.1 unless told otherwise, runs one request at a time (others wait in Gradio's queue), keeps uploads and
results in a temporary folder of its own that it sweeps and removes when it stops, and writes nothing into the run
directory. What a request may send is bounded: its fields by page_fields, its origin, its files and the sweep by
page_guard, the photo's size and faces by MAX_PHOTO_MB and PAGE_LIMITS (face_aging.faces.photo), a video by
page_video.
"""

import dataclasses
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from face_aging import images as imio
from face_aging.data import labels as L
from face_aging.data.pipeline import printable
from face_aging.errors import FaceAgingError
from face_aging.faces.photo import WORK_MAX_PIXELS, PhotoLimits, megapixels, read_size
from face_aging.inference import looks
from face_aging.inference.fullres import DEFAULT_OUTPUT_SIZE
from face_aging.inference.page_fields import (PageError, as_sent, explain, parse_age_now, parse_ages, parse_face,
                                              parse_gender)

INSTALL_HINT = ('pip install -r requirements-app.txt (an installed package: pip install "face-aging[app]")')
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7860                # Gradio's own default, which users of model demos know
BOXES_MAX_SIDE = 1024              # the photo with the faces marked is shown, not downloaded: no need for 12 MP
MAX_PHOTO_MB = 50                  # a phone photo is a few MB; far larger is a mistake, refused before it is read
CACHE_SWEEP = (600, 3600)          # every 10 minutes, uploads and results older than an hour are deleted
# A photo is read at most 16 megapixels (a PNG, which cannot be read reduced, is refused beyond that): the page's
# memory is then bounded whatever is uploaded. More than 20 faces is a crowd, not a portrait to age.
PAGE_LIMITS = PhotoLimits(max_pixels=WORK_MAX_PIXELS, max_decoded=WORK_MAX_PIXELS, max_faces=20)
# The work of one /age: each target age is a pasted copy of the photo (read, blended, encoded, stored).
MAX_PASTED_PIXELS = 100_000_000


# The faces are shown filling their boxes, whatever their resolution (the downloads keep it).
FACE_CSS = ".face img { width: 100%; height: 100%; object-fit: contain; }"


class AppUnavailable(FaceAgingError, RuntimeError):
    """--serve was asked for but Gradio is not installed."""


def require_gradio():
    """AppUnavailable, naming the install command, unless Gradio can be imported."""
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        detail = "" if error.name == "gradio" else f" (importing it failed: {error})"
        raise AppUnavailable(f"--serve needs Gradio, an optional extra that is not installed{detail}: "
                             f"{INSTALL_HINT}") from None


# --- One photo: test mode's steps -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Found:
    crops: list                   # face_aging.faces.inputs.FaceCrop, left to right (with `full`, each face at its
                                  # own resolution)
    images: np.ndarray            # the model's inputs, float32 [N, S, S, 3] in [-1, 1]
    infos: list = None            # face_aging.inference.faceinfo.FaceInfo per face: gender and age, estimated


def _shown_name(path):
    """The uploaded file's name as a message shows it (the upload's folder is the page's business)."""
    name = printable(os.path.basename(path))
    return name if len(name) <= 60 else name[:40] + "..." + name[-17:]


def find_faces(path, ager, output_size=DEFAULT_OUTPUT_SIZE, limits=PAGE_LIMITS):
    """Every face in the photo at `path`, as test mode finds it with --align auto, with its gender and age now
    (from the name, else estimated); PageError saying why when there is none to age. The photo is read within
    `limits` (faces.photo.PhotoLimits)."""
    from face_aging.inference.faceinfo import bundled_estimator, describe_faces
    from face_aging.inference.testmode import model_input
    from face_aging.faces.inputs import collect_faces
    name = _shown_name(path)
    crops, no_face, skipped = collect_faces([path], ager.template, ager.size, "auto", output_size, limits)
    if skipped:
        raise PageError(f"{name} cannot be used: {skipped[0][1]}.")
    if no_face or not crops:
        raise PageError(f"No face found in {name}. Try a photo where the face is larger, seen from the front and "
                        f"well lit.")
    images = np.stack([model_input(crop, ager.size) for crop in crops]).astype(np.float32)
    infos = describe_faces(crops, images, load_estimator=bundled_estimator)
    return Found(crops=crops, images=images, infos=infos)


def describe_face(info):
    """What the page says it knows about a face: "female (estimated, 97% sure), 38 years old (estimated)"."""
    sure = ""
    if info.female_probability is not None and info.gender_from == "estimated":
        sure = f", {max(info.female_probability, 1 - info.female_probability):.0%} sure"
    gender = f"{info.gender_name} ({info.gender_from}{sure})"
    age = "age unknown" if not np.isfinite(info.age) else f"{info.age:.0f} years old ({info.age_from})"
    return f"{gender}, {age}"


def face_outline(crop, size, photo_shape):
    """The corners (x, y) of the region of the photo the model sees for `crop`: the aligned square mapped back into
    the photo, or the centre square of an image used as it is."""
    if crop.matrix is None:
        side = min(photo_shape[:2])
        top, left = (photo_shape[0] - side) / 2, (photo_shape[1] - side) / 2
        return np.array([[left, top], [left + side, top], [left + side, top + side], [left, top + side]])
    from face_aging.faces.align import crop_corners
    return crop_corners(crop.matrix, size)


def draw_faces(photo, crops, size, max_side=BOXES_MAX_SIDE):
    """`photo` (uint8 [H, W, 3]) shrunk to at most `max_side`, with each face's region outlined and numbered."""
    picture = Image.fromarray(np.asarray(photo))
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.BILINEAR, reducing_gap=2.0)
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 250))
    try:
        font = ImageFont.load_default(size=max(12, 6 * width))
    except TypeError:                                   # Pillow < 10.1 has one bitmap size
        font = ImageFont.load_default()
    for number, crop in enumerate(crops, start=1):
        outline = face_outline(crop, size, np.shape(photo))
        # Kept inside the picture, so that a face filling it (a chip used as it is) still shows its outline.
        inset = width / 2
        points = [tuple(p) for p in np.clip(outline * scale, inset, np.array(picture.size) - inset)]
        draw.line(points + points[:1], fill=(255, 215, 0), width=width)
        x, y = min(p[0] for p in points), min(p[1] for p in points)
        draw.text((max(0, x) + width, max(0, y) + width), str(number), fill=(255, 215, 0), font=font,
                  stroke_width=max(1, width // 2), stroke_fill=(0, 0, 0))
    return np.asarray(picture)


@dataclasses.dataclass
class Results:
    aligned: str                  # the crop the model saw (PNG)
    strip: str                    # the input, then the face at each age (test mode's NAME_ages.png)
    gif: str                      # the face through the ages (test mode's NAME.gif)
    faces: list                   # (age, PNG of the face at that age) per age (test mode's NAME_age{N}.png)
    side: int                     # the faces' side in pixels (the face's own resolution, at most --output_size)
    photos: list                  # (age, the photo with the aged face pasted back) per age (PHOTO_age{N}_photo)
    files: list                   # every file above, for download
    face: int = 1                 # the face aged (1-based)
    gender: str = None            # the gender it was aged as (CAAE)
    looks_note: str = ""          # where an aged face does not look its age (inference/looks.py), else ""
    caveats: list = ()            # what the model does not do for this face at these ages (Ager.caveats)


def age_photo(path, ager, found, face_number, ages, gender, input_age, out_dir):
    """Age face `face_number` (1-based) of the photo at `path` to `ages` (years), writing test mode's outputs to
    `out_dir` at the face's own resolution: those of --ages, --gif and --paste_back, the aligned crop, and the face
    at each age. `gender` "male"/"female" and `input_age` (years, or "auto": the face's estimate) as the page's
    fields give them."""
    from face_aging.inference.testmode import GIF_YEAR_MS, paste_back_photos, write_face_outputs
    face_number = parse_face(face_number, len(found.crops))
    ager.check_ages(ages)
    crop, face = found.crops[face_number - 1], found.images[face_number - 1:face_number]
    info = found.infos[face_number - 1] if found.infos else None
    own = float(input_age) if input_age != "auto" else (info.age if info is not None else float("nan"))
    years = ager.gif_years(own)
    wanted = sorted(set(ages) | set(years))
    out = ager.age(face, [L.GENDER_NAMES.index(gender)], [own], wanted)
    index = {age: k for k, age in enumerate(wanted)}
    estimator = looks.estimator_or_none()
    looks_said = "" if estimator is None else looks.said(ages, looks.read(estimator, np.stack([out[index[a], 0]
                                                                                               for a in ages])))

    def at(age, i):
        return out[index[age], i]

    def frames(i):
        return np.stack([out[index[a], i] for a in years])
    aligned = os.path.join(out_dir, f"{crop.name}_aligned.png")
    imio.save_image(np.asarray(crop.crop) if crop.full is None else imio.to_uint8(crop.full), aligned)
    (strip, gif), aged = write_face_outputs(out_dir, [crop.name], face, at, frames, ages=ages, gif=True,
                                            pasted=ages, fulls=[crop.full], gif_ms=GIF_YEAR_MS)
    faces = []
    for age in ages:
        faces.append((age, os.path.join(out_dir, f"{crop.name}_age{age}.png")))
        imio.save_image(aged[0][age], faces[-1][1])
    photos = list(zip(ages, paste_back_photos([crop], aged, ages, out_dir, ager.size)))
    files = [aligned, strip, gif] + [p for _, p in faces] + [p for _, p in photos]
    side = crop.crop.shape[0] if crop.full is None else crop.full.shape[0]
    return Results(aligned=aligned, strip=strip, gif=gif, faces=faces, side=side, photos=photos, files=files,
                   face=face_number, gender=gender, looks_note=looks_said, caveats=ager.caveats([own], ages))


# --- The page --------------------------------------------------------------------------------------------------------

def _age_label(age):
    return f"{age} years"


class Page:
    """The page's logic, apart from Gradio: the model, a small memory of the faces found in recent uploads (so that
    aging the photo just uploaded does not detect its faces again), and the folder results are written to. Every
    field a request sends is parsed here (page_fields); the photo is read within `limits`."""

    def __init__(self, ager, work_dir, output_size=DEFAULT_OUTPUT_SIZE, limits=PAGE_LIMITS):
        self.ager, self.work_dir, self.output_size, self.limits = ager, work_dir, output_size, limits
        self._found = {}
        # Held by each request (they run one at a time anyway) and by the page's sweep, which then never deletes a
        # photo halfway through a request that reads it.
        self.busy = threading.RLock()

    def found(self, path):
        if not path or not isinstance(path, str):
            raise PageError("Upload a photo first.")
        try:
            status = os.stat(path)
        except OSError:
            raise PageError("The uploaded photo is no longer here (uploads are kept for an hour): upload it "
                            "again.") from None
        if status.st_size > MAX_PHOTO_MB * 2 ** 20:
            # Gradio's upload limit is the videos' (page_video.MAX_VIDEO_MB): a photo is held to its own here.
            raise PageError(f"{_shown_name(path)} is {status.st_size / 2 ** 20:,.1f} MB: the page takes photos of at "
                            f"most {MAX_PHOTO_MB} MB.")
        key = (path, status.st_size, status.st_mtime_ns)
        if key not in self._found:
            if len(self._found) >= 4:
                self._found.pop(next(iter(self._found)))
            self._found[key] = find_faces(path, self.ager, self.output_size, self.limits)
        return self._found[key]

    def show_faces(self, path):
        """(the photo with its faces outlined, as a JPEG in a new folder, the number of faces, a note saying the
        photo was read reduced, or "")."""
        found = self.found(path)
        photo = found.crops[0].photo()
        picture = draw_faces(photo, found.crops, self.ager.size)
        stem = os.path.basename(path).split(".")[0][:60]
        out = os.path.join(tempfile.mkdtemp(dir=self.work_dir), f"{stem}_faces.jpg")
        imio.save_image(picture, out, jpeg_quality=90)
        note = ""
        if found.crops[0].reduced_from:
            width, height = found.crops[0].reduced_from
            note = (f"The photo ({width}x{height}) is more than its faces need: the page uses it at "
                    f"{photo.shape[1]}x{photo.shape[0]}. ")
        return out, len(found.crops), note

    def face_info(self, path, face_number):
        """(gender, age now as text, what the page says) of face `face_number`: the fields' starting values."""
        found = self.found(path)
        number = parse_face(face_number, len(found.crops))
        info = found.infos[number - 1]
        return (info.gender_name, "" if not np.isfinite(info.age) else f"{info.age:.0f}",
                f"Face {number}: {describe_face(info)}")

    def age(self, path, face_number, ages, gender, input_age):
        found = self.found(path)
        number = parse_face(face_number, len(found.crops))
        ages = parse_ages(ages)
        gender = parse_gender(gender) if self.ager.takes_gender else None
        input_age = parse_age_now(input_age)
        pixels = photo_pixels(found.crops[number - 1])
        if len(ages) * pixels > MAX_PASTED_PIXELS:
            most = max(1, MAX_PASTED_PIXELS // pixels)
            raise PageError(f"{len(ages)} ages of this {megapixels(pixels)}-megapixel photo is more than the page "
                            f"makes at a time (each age is a copy of the photo): choose at most {most}.")
        if not gender and found.infos:
            gender = found.infos[number - 1].gender_name       # left empty (the API): the estimate
        out_dir = tempfile.mkdtemp(dir=self.work_dir)
        return age_photo(path, self.ager, found, number, ages, gender or "male", input_age, out_dir)


def photo_pixels(crop):
    """The pixels of the photo `crop` was cut from, as it was read (faces.photo.read_size, from the header)."""
    width, height = read_size(crop.source, crop.limits)
    return width * height


def build_page(page, sweep=CACHE_SWEEP):
    """The Gradio Blocks of the page: a Photo tab and a Video tab (page_video). Its API (gradio_client) has, for
    photos, /find_faces(photo) -> (the photo with the faces outlined, the face choice, what is known of face 1, its
    gender, its age now), /face_info(photo, face) -> (what is known of that face, its gender, its age now) and
    /age(photo, face, ages, gender, age_now) -> (aligned face, aged faces side by side, GIF, pasted photos,
    downloads, summary); ages are years ("30, 45" or a list), gender and age_now empty for the estimates. For videos,
    page_video.build_video_tab's /age_video and /stop_video."""
    import gradio as gr
    from face_aging.inference.page_video import build_video_tab
    ager = page.ager

    def find(photo, progress=gr.Progress()):
        progress(0.1, desc="Finding faces")
        try:
            with page.busy:
                boxes, count, reduced = page.show_faces(photo)
                gender, age_now, said = page.face_info(photo, 1)
        except Exception as error:
            raise gr.Error(explain(error), duration=None, print_exception=False) from None
        choices = [(f"Face {k} (left to right)", k) for k in range(1, count + 1)]
        note = (reduced + (f"{count} faces found, numbered left to right: choose one below. " if count > 1 else
                           "1 face found. ") + said + ". Change the gender or the age now below if they are wrong.")
        return boxes, gr.update(choices=choices, value=1, visible=count > 1), note, gender, age_now

    def pick(photo, face):
        try:
            with page.busy:
                gender, age_now, said = page.face_info(photo, face)
        except Exception as error:
            raise gr.Error(explain(error), duration=None, print_exception=False) from None
        return said + ". Change the gender or the age now below if they are wrong.", gender, age_now

    def age(photo, face, ages, gender, age_now, progress=gr.Progress()):
        progress(0.1, desc="Finding faces")
        try:
            with page.busy:
                page.found(photo)
                progress(0.4, desc="Aging")
                results = page.age(photo, face, ages, gender, age_now)
        except Exception as error:
            raise gr.Error(explain(error), duration=None, print_exception=False) from None
        progress(1.0, desc="Done")
        names = ", ".join(_age_label(a) for a, _ in results.faces)
        summary = (f"Face {results.face} at {names} (left to right, after the input), at the face's own "
                   f"resolution ({results.side}x{results.side})."
                   + (f" Aged as {results.gender}." if ager.takes_gender else "")
                   + (f" {results.looks_note[0].upper()}{results.looks_note[1:]} (the bundled age estimator's "
                      f"reading)." if results.looks_note else "")
                   + "".join(f" {line}" for line in results.caveats))
        gallery = [(p, _age_label(a)) for a, p in results.photos]
        return results.aligned, results.strip, results.gif, gallery, results.files, summary

    with gr.Blocks(title="Face aging", analytics_enabled=False, delete_cache=sweep) as demo:
        gr.Markdown(f"# Face aging\n**Model:** {ager.describe()[0]}  \nEverything runs on this machine; nothing is "
                    f"sent anywhere.")
        # One request at a time for the model, whichever button sent it; the others wait in the queue.
        one_at_a_time = dict(concurrency_limit=1, concurrency_id="model")
        with gr.Tab("Photo"):
            with gr.Row():
                with gr.Column(scale=1):
                    photo = gr.File(label="Photo (JPEG or PNG)", file_types=["image"], type="filepath")
                    faces = gr.Image(label="Faces found", type="filepath", interactive=False, height=360)
                    found_note = gr.Markdown()
                    face = gr.Dropdown(label="Face to age", choices=[("Face 1", 1)], value=1, visible=False,
                                       allow_custom_value=True)  # the API may ask for any face; age() says if none
                    ages = gr.Textbox(label="Target ages, in years (comma-separated)",
                                      value=", ".join(map(str, ager.default_ages)), max_lines=1)
                    gender = gr.Radio(label="Gender (estimated; change it if it is wrong)",
                                      choices=list(L.GENDER_NAMES), value=None, visible=ager.takes_gender)
                    # The value as sent, for page_fields.parse_gender: Gradio's own check quotes whatever was
                    # sent, however long. (A subclass would do it too, but Gradio writes a .pyi file beside any
                    # module that defines one.)
                    gender.preprocess = as_sent
                    # Text, not a number field: a number field always holds a number, and "empty" (the estimate)
                    # must stay possible; the age now is where aging starts.
                    age_now = gr.Textbox(label="Their age now, in years (estimated; change it if it is wrong)",
                                         value="", max_lines=1)
                    go = gr.Button("Age this face", variant="primary")
                with gr.Column(scale=2):
                    summary = gr.Markdown()
                    with gr.Row():
                        aligned = gr.Image(label="Aligned input", type="filepath", interactive=False,
                                           height=200, elem_classes="face")
                        gif = gr.Image(label="Through the ages (GIF)", type="filepath", interactive=False,
                                       height=200, elem_classes="face")
                    strip = gr.Image(label="Aged faces (input first)", type="filepath", interactive=False,
                                     height=200, elem_classes="face")
                    # "contain": Gradio's default crops each photo to fill its cell, which cut a wide photo's aged
                    # face out of view (seen in Chromium: two faces side by side, the left one aged, not shown).
                    pasted = gr.Gallery(label="The photo with the aged face", columns=2, height=420,
                                        object_fit="contain")
                    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
        with gr.Tab("Video"):
            build_video_tab(page, one_at_a_time)
        photo.upload(find, inputs=photo, outputs=[faces, face, found_note, gender, age_now], api_name="find_faces",
                     **one_at_a_time)
        face.input(pick, inputs=[photo, face], outputs=[found_note, gender, age_now], api_name="face_info",
                   **one_at_a_time)
        go.click(age, inputs=[photo, face, ages, gender, age_now],
                 outputs=[aligned, strip, gif, pasted, downloads, summary], api_name="age", **one_at_a_time)
    return demo


def free_port(host=LOOPBACK):
    """A port nothing listens on now (for tests and --port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Server:
    """The page being served: `url`, `port`, its `page`, `sweeper` and `uploads` (page_guard), and `close()`, which
    stops it and removes its temporary folder."""

    def __init__(self, demo, url, port, root, previous_temp, page=None, sweeper=None, uploads=None):
        self.demo, self.url, self.port, self.root, self._previous_temp = demo, url, port, root, previous_temp
        self.page, self.sweeper, self.uploads = page, sweeper, uploads

    def close(self):
        if self.sweeper is not None:
            self.sweeper.stop()
        self.demo.close()
        shutil.rmtree(self.root, ignore_errors=True)
        if self._previous_temp is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = self._previous_temp

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start(ager, host=LOOPBACK, port=DEFAULT_PORT, output_size=DEFAULT_OUTPUT_SIZE, sweep=CACHE_SWEEP,
          limits=PAGE_LIMITS):
    """Serve the page for `ager` on host:port in background threads; returns the Server. `sweep`: (every, age) in
    seconds of the sweep of uploads and results; `limits`: how much of a photo is read (faces.photo.PhotoLimits).
    One page per process at a time: Gradio reads its folder from the process's environment (GRADIO_TEMP_DIR)."""
    require_gradio()
    from starlette.middleware import Middleware
    from face_aging.inference.page_guard import Addresses, PageGuard, Sweeper, Uploads
    from face_aging.inference.page_video import MAX_VIDEO_MB
    if port == 0:
        port = free_port(host if host != "0.0.0.0" else LOOPBACK)
    root = tempfile.mkdtemp(prefix="face-aging-app-")
    previous_temp = os.environ.get("GRADIO_TEMP_DIR")
    # Gradio keeps uploads and the results it serves under GRADIO_TEMP_DIR: this server's own folder, removed when
    # it stops. It is read when the page is built, so it is set first; so is the switch that keeps Gradio from
    # asking the internet for its latest version.
    os.environ["GRADIO_TEMP_DIR"] = root
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    logging.getLogger("httpx").setLevel(logging.WARNING)    # Gradio's own start-up requests, one line each
    try:
        import gradio as gr
        work = os.path.join(root, "results")
        os.makedirs(work)
        page = Page(ager, work, output_size, limits)
        demo = build_page(page, sweep)
        demo.queue(default_concurrency_limit=1)
        uploads = Uploads()
        guard = Middleware(PageGuard, addresses=Addresses(host, port), uploads=uploads)
        # System fonts: the default theme's Google font would be fetched from the internet by the browser.
        # show_error=False: every message of the page's own is a gr.Error, shown whatever this says; Gradio's own
        # errors about a malformed request (pydantic's text, the components' reprs) are not shown.
        theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                  font_mono=["ui-monospace", "monospace"])
        try:
            demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                        inbrowser=False, show_error=False, ssr_mode=False, max_file_size=f"{MAX_VIDEO_MB}mb",
                        theme=theme, css=FACE_CSS, app_kwargs={"middleware": [guard]})
        except OSError as error:
            raise AppUnavailable(f"Cannot listen on {host}:{port} ({error}): pass another --port") from None
        # The page's own sweep, beside Gradio's (delete_cache), which one bad file stops for good.
        sweeper = Sweeper(root, *sweep, keep=(work,), lock=page.busy, uploads=uploads).start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    shown = LOOPBACK if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    return Server(demo, f"http://{shown}:{port}/", port, root, previous_temp, page, sweeper, uploads)


def exposure_warning(host, port):
    """The warning for an address other computers may reach, or None for this machine's own (loopback)."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return None
    return (f"Listening on {host}:{port}: the page has no authentication, so anyone who can reach this address can "
            f"upload photos to it and use this machine's model. Leave out --host to serve this machine only.")


def serve(ager, host=LOOPBACK, port=DEFAULT_PORT, output_size=DEFAULT_OUTPUT_SIZE):
    """Serve the page until Ctrl-C or SIGTERM (the --serve command)."""
    # SIGTERM (kill, a service manager) stops the server as Ctrl-C does, so its temporary folder is removed too;
    # whenever it comes, even while the address is being printed to whoever may stop the server on reading it.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = None
    try:
        server = start(ager, host, port, output_size)
        warning = exposure_warning(host, server.port)
        if warning:
            logging.warning("%s", warning)
        print(f"\tServing {'; '.join(ager.describe())}\n\tOpen {server.url} in a browser (Ctrl-C stops the server)",
              flush=True)
        server.demo.block_thread()
    except KeyboardInterrupt:
        pass                     # stopping is what was asked (Gradio's own wait takes it the same way)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt
