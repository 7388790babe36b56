"""Short clips of rendered faces (face_aging.data.synthetic) moving slightly over a still background, with or without
a sound track, written with PyAV: what the video tests and the video benchmark age. Each clip comes with where its
faces are in every frame, so that flicker can be measured inside them (face_aging.inference.flicker).
"""

import dataclasses
import fractions

import numpy as np
from PIL import Image

from face_aging.data import synthetic

SOUND_RATE = 48000


@dataclasses.dataclass
class ClipTruth:
    path: str
    frames: int
    rate: fractions.Fraction
    width: int                    # as shown (upright)
    height: int
    boxes: list                   # per frame: [(x, y, side) of each face shown, in upright pixels]
    pts: list                     # per frame, in time_base
    time_base: fractions.Fraction
    sound: str                    # the sound codec, or None
    rotation: int                 # quarter turns counter-clockwise a player applies


def _background(width, height, seed):
    """A still, softly textured background: frames without a face still have something to encode."""
    rng = np.random.default_rng(seed)
    shape = (max(2, height // 24), max(2, width // 24))
    grey = rng.uniform(70, 180, shape + (1,))
    tint = rng.uniform(-15, 15, shape + (3,))
    coarse = np.clip(grey + tint, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


def _place(canvas, picture, centre, side, degrees):
    """`picture` (square) drawn into `canvas` with its centre at `centre`, `side` pixels wide, turned `degrees`."""
    height, width = canvas.shape[:2]
    n = picture.shape[0]
    t = np.radians(degrees)
    scale = side / n
    # canvas -> picture coordinates (the inverse of: picture centre to `centre`, scaled, turned)
    c, s = np.cos(t) / scale, np.sin(t) / scale
    cx, cy = centre
    a, b = c, s
    d, e = -s, c
    data = (a, b, n / 2 - a * cx - b * cy, d, e, n / 2 - d * cx - e * cy)
    warped = Image.fromarray(picture).transform((width, height), Image.AFFINE, data, Image.BICUBIC)
    mask = Image.new("L", (n, n), 255).transform((width, height), Image.AFFINE, data, Image.BILINEAR)
    return np.array(Image.composite(warped, Image.fromarray(canvas), mask))


def _sound(out_stream, duration, codec):
    """A 440 Hz tone with a slow beat, `duration` seconds, as frames for `out_stream`."""
    import av
    samples = int(round(duration * SOUND_RATE))
    t = np.arange(samples) / SOUND_RATE
    wave = (0.25 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)
    step = 960 if codec == "libopus" else 1024
    for start in range(0, samples, step):
        chunk = wave[start:start + step]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = SOUND_RATE, start, fractions.Fraction(1, SOUND_RATE)
        yield frame


# FFmpeg's numbers for BT.2020 primaries, ARIB STD-B67 (HLG) transfer, BT.2020 non-constant-luminance matrix.
HDR_TAGS = (9, 18, 9)


def render_clip(path, width=160, height=120, frames=16, rate=25, persons=(1,), face_side=None, sound=None,
                rotation=0, face_frames=None, vfr=False, amplitude=0.04, age=30, seed=0, hdr=False):
    """Write a clip of `frames` frames to `path` (MP4; .mov or .mkv for PCM sound) and return its ClipTruth.

    persons: synthetic person ids (seed 5), one face each, side by side; face_side: their side in pixels (default
    0.75 of the height, split between them); sound: None, "aac", "opus" (libopus) or "pcm" (pcm_s16le);
    rotation: quarter turns a player turns the stored frames (1: a phone's portrait clip stored sideways);
    face_frames: the frame indices that show the faces (default every frame); vfr: frame durations alternate
    between 1/rate and 1.5/rate (a variable frame rate); hdr: 10-bit HEVC tagged BT.2020 and HLG, as a phone's HDR
    clip (the pixels are the same picture, not graded for HDR)."""
    import av
    rate = fractions.Fraction(rate)
    count = len(persons)
    side = face_side or int(min(0.75 * height, 0.8 * width / count))
    faces = [synthetic.render_face(synthetic.make_person(p, seed=5), age, side) for p in persons]
    background = _background(width, height, seed)
    shown = range(frames) if face_frames is None else set(face_frames)
    time_base = fractions.Fraction(1, 1000) if vfr else 1 / rate / 100
    durations = [(1 if i % 2 == 0 else 1.5) / rate if vfr else 1 / rate for i in range(frames)]
    pts = [int(round(sum(durations[:i]) / time_base)) for i in range(frames)]
    duration = float(sum(durations))

    container = av.open(path, "w")
    if hdr:
        video = container.add_stream("libx265", rate=rate, options={"crf": "16", "preset": "veryfast",
                                                                    "x265-params": "log-level=error"})
    else:
        video = container.add_stream("libx264", rate=rate, options={"crf": "16", "preset": "veryfast"})
    stored_w, stored_h = (height, width) if rotation % 2 else (width, height)
    video.width, video.height = stored_w, stored_h
    video.pix_fmt = "yuv420p10le" if hdr else "yuv420p" if stored_w % 2 == 0 and stored_h % 2 == 0 else "yuv444p"
    if hdr:
        context = video.codec_context
        context.color_primaries, context.color_trc, context.colorspace = HDR_TAGS
    video.time_base = video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(90 * rotation)
    audio = None
    if sound:
        codec = {"aac": "aac", "opus": "libopus", "pcm": "pcm_s16le"}[sound]
        audio = container.add_stream(codec, rate=SOUND_RATE)
        audio.layout = "stereo"

    sound_frames = iter(_sound(audio, duration, audio.codec_context.name)) if audio is not None else iter(())
    pending = next(sound_frames, None)

    def sound_until(seconds):
        # Sound is encoded alongside the picture, so the file interleaves the two as a camera's does.
        nonlocal pending
        while pending is not None and (seconds is None or pending.pts / SOUND_RATE < seconds):
            for packet in audio.encode(pending):
                container.mux(packet)
            pending = next(sound_frames, None)

    boxes = []
    for i in range(frames):
        sound_until(pts[i] * time_base + 0.1)
        phase = 2 * np.pi * i / 24.0
        frame = background
        here = []
        if i in shown:
            for k, face in enumerate(faces):
                cx = width * (k + 0.5) / count + amplitude * width * np.sin(phase)
                cy = height * 0.5 + 0.5 * amplitude * height * np.sin(0.7 * phase + 1.0)
                frame = _place(frame, face, (cx, cy), side, 2.0 * np.sin(0.5 * phase))
                here.append((cx - side / 2, cy - side / 2, side))
        boxes.append(here)
        stored = np.ascontiguousarray(np.rot90(frame, -rotation)) if rotation else frame
        out = av.VideoFrame.from_ndarray(stored, format="rgb24")
        if hdr:
            out = out.reformat(format="yuv420p10le", dst_colorspace=HDR_TAGS[2])
            out.color_primaries, out.color_trc, out.colorspace = HDR_TAGS
        out.pts, out.time_base = pts[i], time_base
        for packet in video.encode(out):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    if audio is not None:
        sound_until(None)
        for packet in audio.encode():
            container.mux(packet)
    container.close()
    return ClipTruth(path=path, frames=frames, rate=rate, width=width, height=height, boxes=boxes, pts=pts,
                     time_base=time_base, sound=sound and {"opus": "opus", "pcm": "pcm_s16le"}.get(sound, sound),
                     rotation=rotation % 4)
