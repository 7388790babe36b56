"""A clip's faces aged frame by frame (docs/test_mode.md#videos): decode a frame, follow its faces
(face_aging.faces.track), cut each face's aligned crop at the model's size, age it with the model's Ager, as test mode
does (face_aging/models/ager.py), add the model's change to the frame's own pixels (face_aging.faces.blend: the
video form of carrying the change to the face's own resolution) and encode; the sound is copied as it is
(face_aging.inference.videoio). One frame at a time, with a few held back before they are written (a face found
late is aged in them too: HELD_BYTES): memory does not grow with the clip's length.

What keeps a face the same from frame to frame: the crop is cut at landmarks smoothed over time; each face's gender
and age now are estimated once, at its first frame, and kept for its whole track; the model's change is smoothed
over time (CHANGE_SMOOTHING), in the crop's coordinates, which follow the face; and only the change is resampled,
never the frame's own pixels.

`age_video(path, ager, out_dir, options, progress, should_stop)` is what the command line (videotest.py) and a page
call: a path, options, a progress callback and a stop test.
"""

import collections
import dataclasses
import json
import os
import time
import types

import numpy as np
from PIL import Image

from face_aging.data.pipeline import printable
from face_aging.faces import align as A
from face_aging.faces import refine
from face_aging.faces.blend import ChangeBlend
from face_aging.fileio import atomic_write
from face_aging.inference import videoio

# The model's change in each frame is blended with the face's running change: 0 takes each frame's as it is, 0.5
# keeps half of the running one. On a nearly still face this took PAGAN's flicker from 1.76 to 1.59 (before the
# change was added to the frame's own pixels; docs/test_mode.md#videos); the aging itself changes slowly and is not
# blurred, and the running change lives in the crop's coordinates, which follow the face.
CHANGE_SMOOTHING = 0.5
# While a face's crop stays where it is (the tracker's dead band: face_aging.faces.track), the running change keeps
# up to STILL_SMOOTHING of itself: where the crop's pixels change by less than STILL_BELOW grey levels from the last
# frame (averaged over 5x5 pixels) it is the codec's noise, which PAGAN answers with fine lines that come and go;
# where they change more (a blink, a mouth that opens), the keep falls back to CHANGE_SMOOTHING as a Gaussian of the
# change. On rendered clips this took PAGAN's flicker on a still face from 1.74 to 1.20 (720p) while keeping 96% of
# the aging's fine detail on a swaying one (docs/test_mode.md#videos).
STILL_SMOOTHING = 0.95
STILL_BELOW = 5.0
# Frames are written this many frames late (at most --detect_every - 1, and at most HELD_BYTES of pictures held):
# a face that comes into view between two full detections is found at the next one, and is then followed back and
# aged in the frames held since it came, instead of appearing un-aged and changing up to a third of a second later.
HELD_BYTES = 512 * 2 ** 20
# Side-by-side clips are at most this wide (each half shrunk to fit): 4K side by side would be 7680 pixels wide.
SIDE_BY_SIDE_MAX_WIDTH = 3840


@dataclasses.dataclass
class VideoOptions:
    ages: tuple                          # years; one aged clip per age
    side_by_side: bool = False           # also NAME_age{N}_side.mp4: the input beside the aged clip
    detect_every: int = 10               # frames between full detections (and whenever a face is lost)
    gender: str = "auto"                 # as --gender
    input_age: object = "auto"           # as --input_age: auto, estimate or years
    change_smoothing: float = CHANGE_SMOOTHING
    still_smoothing: float = STILL_SMOOTHING


@dataclasses.dataclass
class VideoProgress:
    path: str
    frame: int                           # frames done
    frames: int                          # the clip's frames as its header gives them (0: unknown)
    fps: float                           # frames a second so far
    seconds_left: float                  # None when unknown
    faces: int                           # faces in the last frame


@dataclasses.dataclass
class VideoResult:
    path: str
    outputs: dict                        # {age: path of the aged clip}
    sides: dict                          # {age: path of the side-by-side clip}
    frames: int                          # frames written
    expected: int                        # frames the header announced (0: unknown)
    face_frames: int                     # frames in which at least one face was aged
    tracks: list                         # per face followed: its record (tracks.json)
    stopped: bool                        # stopped before the end (Ctrl-C, the page's stop): the clips are partial
    damage: str                          # what was wrong with the input, if anything (None)
    seconds: float
    detections: int = 0
    depth: str = None                    # the input's picture beyond 8-bit, which the clip does not keep (videoio)


def output_name(path, age, side=False, partial=False):
    """NAME_age{N}.mp4 (NAME: the clip's file name up to its first "."), _side for the side-by-side clip, _partial
    for a clip stopped before its end."""
    stem = os.path.basename(os.fsdecode(path)).split(".")[0] or "clip"
    return f"{stem}_age{age}" + ("_side" if side else "") + ("_partial" if partial else "") + ".mp4"


def _side_by_side(left, right):
    height, width = left.shape[:2]
    if 2 * width > SIDE_BY_SIDE_MAX_WIDTH:
        scale = SIDE_BY_SIDE_MAX_WIDTH / (2 * width)
        size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
        left = np.asarray(Image.fromarray(left).resize(size, Image.BILINEAR))
        right = np.asarray(Image.fromarray(right).resize(size, Image.BILINEAR))
    return np.concatenate([left, right], axis=1)


class _Faces:
    """Each track's aging: its crop in this frame, its fixed gender and age now, its running change."""

    def __init__(self, path, ager, options, load_estimator):
        self.path, self.ager, self.options, self.load_estimator = path, ager.unsteered(), options, load_estimator
        self.template = A.template_for(ager.template)
        self.size = ager.size

    def describe(self, tracks, faces):
        """Gender and age now of new tracks, from the flags or estimated on their first frame, then kept."""
        from face_aging.inference.faceinfo import describe_faces
        crops = [types.SimpleNamespace(source=self.path, index=t.number - 1) for t in tracks]
        infos = describe_faces(crops, faces, self.options.gender, self.options.input_age,
                               load_estimator=self.load_estimator)
        own = np.array([np.nan if self.options.input_age == "estimate" else info.age for info in infos])
        unknown = np.flatnonzero(~np.isfinite(own))
        if len(unknown):
            own[unknown] = self.ager.own_ages(faces[unknown], [infos[i].gender for i in unknown])
        for track, info, years in zip(tracks, infos, own):
            track.state.update(info=info, gender=info.gender, own=float(years), change={})

    def _keep(self, track, face):
        """How much of the running change this frame keeps: a number, or per pixel [size, size, 1] while the crop
        is held still."""
        from scipy import ndimage
        keep, still = self.options.change_smoothing, self.options.still_smoothing
        previous = track.state.get("crop")
        track.state["crop"] = face
        if previous is None or track.moved or still <= keep:
            return keep
        step = ndimage.uniform_filter(np.abs(face - previous).mean(axis=-1), 5) * 127.5
        return (keep + (still - keep) * np.exp(-(step / STILL_BELOW) ** 2))[..., None].astype(np.float32)

    def _cut(self, image, landmarks):
        """(the crop's matrix, the crop in the models' [-1, 1]) of the face at `landmarks`."""
        matrix = A.crop_matrix(landmarks, self.template, self.size)
        return matrix, np.asarray(A.warp_face(image, matrix, self.size), np.float32) / 127.5 - 1.0

    def age(self, image, tracks, ages):
        """{age: image with every track's face aged}."""
        size = self.size
        matrices, faces = zip(*[self._cut(image, track.landmarks) for track in tracks])
        faces = np.stack(faces)
        keeps = [self._keep(track, face) for track, face in zip(tracks, faces)]
        new = [i for i, track in enumerate(tracks) if "gender" not in track.state]
        if new:
            self.describe([tracks[i] for i in new], faces[new])
        out = self.ager.age(faces, [t.state["gender"] for t in tracks], [t.state["own"] for t in tracks], ages)
        blends = [ChangeBlend(image.shape, matrix, size, size) for matrix in matrices]
        result = {}
        for a, age in enumerate(ages):
            aged = image
            for j, track in enumerate(tracks):
                change = out[a, j] - faces[j]
                running = track.state["change"].get(age)
                if running is not None:
                    change = keeps[j] * running + (1.0 - keeps[j]) * change
                track.state["change"][age] = change
                aged = blends[j].apply(aged, change)
            result[age] = aged
        return result

    def fill_in(self, tracker, track, held, ages):
        """Age a face found late (`track`, new in this frame) in the frames held back before it (`held`, oldest
        first), as far back as the tracker follows it; returns how many frames it was added to."""
        recent = list(reversed(held))
        found = tracker.trace_back(track, [h.shown for h in recent], [h.boxes for h in recent])
        if not found:
            return 0
        matrices, crops = zip(*[self._cut(h.shown, points) for h, points in zip(recent, found)])
        crops = np.stack(crops)
        count = len(crops)
        out = self.ager.age(crops, [track.state["gender"]] * count, [track.state["own"]] * count, ages)
        blends = [ChangeBlend(h.shown.shape, matrix, self.size, self.size) for h, matrix in zip(recent, matrices)]
        keep = self.options.change_smoothing
        for a, age in enumerate(ages):
            running = track.state["change"].get(age)
            for k, (h, blend) in enumerate(zip(recent, blends)):
                change = out[a, k] - crops[k]
                if running is not None:
                    change = keep * running + (1.0 - keep) * change
                running = change
                h.aged[age] = blend.apply(h.aged.get(age, h.shown), change)
        for h, points in zip(recent, found):
            h.boxes.append(refine.square_box(points))
        track.first_frame -= count
        track.frames += count
        return count


class _Held:
    """A frame held back before it is written, so that a face found late can still be aged in it."""
    __slots__ = ("frame", "shown", "aged", "boxes")

    def __init__(self, frame, shown, aged, tracks):
        self.frame, self.shown, self.aged = frame, shown, aged
        self.boxes = [track.box() for track in tracks]


def _record(track):
    info = track.state.get("info")
    record = {"face": track.number, "first_frame": track.first_frame, "frames": track.frames}
    if info is not None:
        record.update(gender=info.gender_name, gender_from=info.gender_from,
                      age=round(track.state["own"], 1), age_from=info.age_from)
    return record


def age_video(path, ager, out_dir, options, progress=None, should_stop=None, load_estimator=None):
    """Age every face of the clip at `path` to each of options.ages; write out_dir/NAME_age{N}.mp4 (and
    NAME_age{N}_side.mp4). `ager`: the model's Ager (inference.agers.load_ager). `progress(VideoProgress)` is called
    after every frame; `should_stop()`, if it returns True, ends the clips there (named NAME_age{N}_partial.mp4,
    playable).
    Returns a VideoResult; VideoError (naming the file) when the clip cannot be read or written."""
    from face_aging.faces.track import FaceTracker
    start = time.perf_counter()
    reader = videoio.ClipReader(path)
    info = reader.info
    ages = [int(a) for a in options.ages]
    writers = {age: videoio.ClipWriter(os.path.join(out_dir, output_name(path, age)), reader) for age in ages}
    sides = {age: videoio.ClipWriter(os.path.join(out_dir, output_name(path, age, side=True)), reader, rotate=False)
             for age in ages} if options.side_by_side else {}
    every = list(writers.values()) + list(sides.values())
    faces = _Faces(path, ager, options, load_estimator)
    tracker = FaceTracker(options.detect_every)

    def relay(packet):
        # Sound an MP4 cannot hold is decoded once here and encoded by each writer.
        decoded = None
        if packet.stream.codec_context.name not in videoio.MP4_SOUND:
            decoded = videoio.decode_sound(reader, packet)
            if decoded is None:
                return
        for writer in every:
            writer.sound_packet(packet, decoded)

    done = face_frames = 0
    turns = depth = None
    stopped = False
    held = collections.deque()        # frames not written yet: a face found late is aged in them too
    room = None

    def write(entry):
        nonlocal face_frames
        face_frames += bool(entry.aged)
        for age in ages:
            if age in entry.aged:
                writers[age].write(entry.frame, np.ascontiguousarray(videoio.as_stored(entry.aged[age], turns)))
            else:
                writers[age].write(entry.frame)           # no face: the decoded frame as it is
            if age in sides:
                sides[age].write(entry.frame, _side_by_side(entry.shown, entry.aged.get(age, entry.shown)))

    began = time.perf_counter()
    try:
        for frame in reader.frames(relay):
            if should_stop is not None and should_stop():
                stopped = True
                break
            if turns is None:
                turns, depth = videoio.rotation_of(frame), videoio.depth_note(frame)
            # Upright and contiguous: detection, tracking and the crops read it many times.
            shown = np.ascontiguousarray(videoio.upright(videoio.to_rgb(frame), turns))
            if room is None:
                # Each held frame: the decoded frame (4:2:0, half the RGB picture), the picture, one aged per age.
                room = min(options.detect_every - 1, int(HELD_BYTES // (shown.nbytes * (1.5 + len(ages)))))
            seconds = float(frame.time) if frame.time is not None else done / float(info.rate)
            tracks = tracker.step(shown, seconds, done)
            aged = faces.age(shown, tracks, ages) if tracks else {}
            for track in tracks:
                if track.frames == 1 and held:
                    faces.fill_in(tracker, track, held, ages)
            held.append(_Held(frame, shown, aged, tracks))
            while len(held) > room:
                write(held.popleft())
            done += 1
            if progress is not None:
                elapsed = time.perf_counter() - began
                fps = done / elapsed if elapsed > 0 else 0.0
                left = (info.frames - done) / fps if fps and info.frames >= done else None
                progress(VideoProgress(path, done, info.frames, fps, left, len(tracks)))
    except KeyboardInterrupt:
        stopped = True           # a second Ctrl-C: stop at once, but still finish the files written so far
    except BaseException:
        for writer in every:
            writer.abort()
        reader.close()
        raise
    try:
        while held:
            write(held.popleft())
    except KeyboardInterrupt:
        stopped = True
        held.clear()
    except BaseException:
        for writer in every:
            writer.abort()
        reader.close()
        raise
    reader.close()
    if done == 0 and not stopped:
        for writer in every:
            writer.abort()
        raise videoio.VideoError(f"{printable(path)}: no frame of its video decodes"
                                 + (f" ({reader.damage})" if reader.damage else "")
                                 + f": damaged, or a codec ({info.codec}) this FFmpeg cannot decode")
    last = None if stopped else reader.last_duration()
    outputs, side_paths = {}, {}
    for age in ages:
        target = os.path.join(out_dir, output_name(path, age, partial=stopped))
        outputs[age] = writers[age].close(target, last)
        if age in sides:
            side_paths[age] = sides[age].close(os.path.join(out_dir, output_name(path, age, True, stopped)), last)
    outputs = {age: p for age, p in outputs.items() if p}
    side_paths = {age: p for age, p in side_paths.items() if p}
    damage = "; ".join(d for d in (reader.damage, reader.sound_damage) if d) or None
    if not stopped and info.frames and done < info.frames and reader.stream_frames:
        damage = (f"{damage}; " if damage else "") + (f"it ends early: {done} of the {info.frames} frames its header "
                                                      f"announces were read (truncated?)")
    return VideoResult(path=path, outputs=outputs, sides=side_paths, frames=done, expected=info.frames,
                       face_frames=face_frames, tracks=[_record(t) for t in tracker.all_tracks()], stopped=stopped,
                       damage=damage, seconds=time.perf_counter() - start, detections=tracker.detections,
                       depth=depth)


def write_tracks(result, out_dir):
    """out_dir/NAME_tracks.json: every face followed (its number, first frame, frames shown, gender and age now with
    where each came from); returns the path."""
    stem = os.path.basename(os.fsdecode(result.path)).split(".")[0] or "clip"
    path = os.path.join(out_dir, f"{stem}_tracks.json")
    with atomic_write(path) as f:
        f.write(json.dumps({"file": printable(result.path), "frames": result.frames, "face_frames": result.face_frames,
                            "faces": result.tracks}, indent=1).encode() + b"\n")
    return path
