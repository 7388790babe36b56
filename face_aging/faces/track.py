"""Faces followed through a video, so that the same face looks the same from frame to frame.

A face's landmarks are measured in every frame by MTCNN's last stage on the box where the face was
(face_aging.faces.refine, a few milliseconds), and smoothed over time by a one-euro filter (Casiez, Roussel, Vogel,
CHI 2012: a low-pass filter whose cutoff rises with the speed, so a still face is steady and a moving one is not left
behind). The full detection (face_aging.faces.detect, a few hundred milliseconds on a 720p frame) runs only every
`detect_every` frames, to find faces that came in, and in any frame where a face was lost. A face found by neither
ends its track there (its frame passes through unchanged): holding its last place for a frame or two (`hold`) would
hide a one-frame miss, but at a scene cut it would paint the face's aging onto whatever came next.

Landmarks are what the crop is cut at, so smoothing them keeps the model's input, and so its output, steady; the
crop is pasted back where it was cut, so a smoothed crop that lags a fast face by a frame shows no seam. The filter
alone still lets a still face's crop wander by a tenth of a pixel a frame (the landmarks answer the codec's noise),
and a model that paints fine lines (PAGAN) turns that into flicker: the crop therefore stays where it is until the
smoothed landmarks leave it by DEAD_BAND and then follows them at that distance (a dead band; `Track.moved` says whether
it moved this frame).
"""

import dataclasses
import math

import numpy as np

from face_aging.faces import detect, refine

# One-euro filter settings, in units of the face's landmark spread (the root-mean-square distance of its five
# landmarks from their centre) and seconds: a face still to within landmark noise is filtered at MIN_CUTOFF Hz,
# and the cutoff rises by BETA Hz per spread per second of speed.
MIN_CUTOFF = 0.4
BETA = 1.5
D_CUTOFF = 1.0
# The dead band, in landmark spreads (root-mean-square over the five landmarks): a still face's smoothed landmarks
# wander by up to 0.04 spread on a rendered clip (720p and 320x240, codec noise only), so 0.1 holds its crop still;
# a moving face's crop trails it by 0.1 spread (about 1.5% of the face's side: the model's input shifts by a pixel or
# so, and the change is pasted where the crop was cut). docs/test_mode.md#videos has the flicker this buys.
DEAD_BAND = 0.1


def _alpha(dt, cutoff):
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The one-euro filter of an array of values over time (seconds)."""

    def __init__(self, min_cutoff=MIN_CUTOFF, beta=BETA, d_cutoff=D_CUTOFF):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.value = self.speed = self.time = None

    def __call__(self, value, time):
        value = np.asarray(value, np.float64)
        if self.value is None:
            self.value, self.speed, self.time = value, np.zeros_like(value), time
            return value
        dt = max(1e-3, time - self.time)       # equal or backward stamps (broken files): as a millisecond
        a = _alpha(dt, self.d_cutoff)
        self.speed = a * (value - self.value) / dt + (1 - a) * self.speed
        a = _alpha(dt, self.min_cutoff + self.beta * np.abs(self.speed))
        self.value = a * value + (1 - a) * self.value
        self.time = time
        return self.value


def spread(landmarks):
    points = np.asarray(landmarks, np.float64)
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))


def iou(a, b):
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@dataclasses.dataclass(eq=False)
class Track:
    number: int                  # 1, 2, ... in order of appearance in the clip
    first_frame: int
    measured: np.ndarray         # the last landmarks measured [5, 2] (image pixels)
    landmarks: np.ndarray = None  # smoothed: what this frame's crop is cut at
    frames: int = 0              # frames it was shown in
    missed: int = 0              # frames in a row it was not found
    state: dict = dataclasses.field(default_factory=dict)   # the caller's own per-face data
    unit: float = 1.0
    filter: OneEuroFilter = dataclasses.field(default_factory=OneEuroFilter)
    dead_band: float = DEAD_BAND
    moved: bool = True           # the crop moved this frame (always in its first)

    def box(self):
        return refine.square_box(self.measured)

    def smooth(self, landmarks, time):
        self.measured = np.asarray(landmarks, np.float64)
        smoothed = self.filter(self.measured / self.unit, time) * self.unit
        if self.landmarks is None:
            self.landmarks, self.moved = smoothed, True
            return
        away = smoothed - self.landmarks
        distance = float(np.sqrt((away ** 2).sum(axis=1).mean()))
        self.moved = distance > self.dead_band * self.unit
        if self.moved:
            self.landmarks = self.landmarks + away * (1.0 - self.dead_band * self.unit / distance)


class FaceTracker:
    """Every face of a clip, frame by frame: `step(image, time, index)` gives the tracks shown in this frame."""

    def __init__(self, detect_every=10, hold=0, min_confidence=0.9, keep_confidence=0.6, detector=None,
                 refiner=None):
        self.detect_every, self.hold = max(1, int(detect_every)), hold
        self.min_confidence, self.keep_confidence = min_confidence, keep_confidence
        self.detector = detector or (lambda image: detect.detect_faces(image, min_confidence))
        self.refiner = refiner or (refine.refine if refine.available() else None)
        self.tracks, self.ended = [], []
        self.last_detection = None
        self.detections = 0
        self.count = 0
        self.frame_seconds = 1 / 30       # time between frames, for following a face back (step() measures it)
        self.last_time = None

    def step(self, image, time, index):
        if self.last_time is not None and time > self.last_time:
            self.frame_seconds = time - self.last_time
        self.last_time = time
        measured = {}
        if self.tracks and self.refiner is not None:
            landmarks, confidence = self.refiner(image, np.stack([track.box() for track in self.tracks]))
            for track, points, sure in zip(self.tracks, landmarks, confidence):
                if sure >= self.keep_confidence:
                    measured[track] = points
        due = self.last_detection is None or index - self.last_detection >= self.detect_every
        if due or len(measured) < len(self.tracks) or self.refiner is None:
            self._detect(image, index, measured)
        for track in self.tracks:
            if track in measured:
                track.smooth(measured[track], time)
                track.missed = 0
            else:
                track.missed += 1
        self._drop([t for t in self.tracks if t.missed > self.hold])
        self._drop(self._duplicates())
        shown = [track for track in self.tracks if track.landmarks is not None]
        for track in shown:
            track.frames += 1
        return shown

    def trace_back(self, track, images, taken=()):
        """A face found late (it came into view between two full detections) followed back through the frames
        before it, newest first: the landmarks its crop would have been cut at in each (smoothed and held as
        forward, from where it was found), until the refiner loses it or reaches a place another face held then
        (`taken`: per image, the boxes (x1, y1, x2, y2) of the faces shown in it). Returns a list, one [5, 2] array
        per image followed, in the order of `images`."""
        if self.refiner is None:
            return []
        back = Track(track.number, track.first_frame, track.measured, unit=track.unit)
        back.smooth(track.measured, 0.0)
        points, out = track.measured, []
        for step, image in enumerate(images, start=1):
            landmarks, confidence = self.refiner(image, refine.square_box(points)[None])
            if confidence[0] < self.keep_confidence:
                break
            points = landmarks[0]
            box = refine.square_box(points)
            if any(iou(box, other) > 0.3 for other in (taken[step - 1] if step <= len(taken) else ())):
                break
            back.smooth(points, step * self.frame_seconds)
            out.append(back.landmarks.copy())
        return out

    def _detect(self, image, index, measured):
        """A full detection: faces not followed yet become tracks; a lost track that is found again goes on."""
        self.last_detection, self.detections = index, self.detections + 1
        for face in self.detector(image):
            box = refine.square_box(face.landmarks)
            best = max(self.tracks, key=lambda t: iou(t.box(), box), default=None)
            if best is not None and iou(best.box(), box) >= 0.3:
                measured.setdefault(best, face.landmarks)
                continue
            self.count += 1
            track = Track(self.count, index, np.asarray(face.landmarks, np.float64), unit=spread(face.landmarks))
            self.tracks.append(track)
            measured[track] = face.landmarks

    def _duplicates(self):
        """Later tracks that follow the same face as an earlier one (two boxes that came to overlap)."""
        out = []
        for i, a in enumerate(self.tracks):
            for b in self.tracks[i + 1:]:
                if b not in out and iou(a.box(), b.box()) > 0.5:
                    out.append(b)
        return out

    def _drop(self, tracks):
        for track in tracks:
            if track in self.tracks:
                self.tracks.remove(track)
                self.ended.append(track)

    def all_tracks(self):
        return sorted(self.ended + self.tracks, key=lambda t: t.number)
