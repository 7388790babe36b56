"""The page's Video tab (face_aging/inference/app.py): a clip uploaded, every face in it followed and aged to the
target ages as test mode ages a clip (face_aging.inference.video.age_video, docs/test_mode.md#videos), a progress
bar with the frames done and the time left, and the aged clips (with the side-by-side clips if asked) to play and
download. A face's gender and age now are test mode's for videos: estimated once for each face followed, at its
first frame, unless the fields give them (then they hold for every face).

PyAV is the optional video extra: nothing here imports it until a clip is aged, so without it the page serves photos
as before and the Video tab says which pip command adds it.

What one request may ask is bounded here: a video file (by its suffix) of at most MAX_VIDEO_MB, frames of at most
MAX_FRAME_PIXELS, at most MAX_VIDEO_FRAMES frames (refused from the header's count; a header that says less is
stopped there), and clips written at once (one per age, twice with side-by-side) within MAX_WRITTEN_PIXELS a frame.
The Stop button finishes the clips written so far, playable, as test mode's Ctrl-C does; it stops only the run of
the browser tab (Gradio's session) that pressed it.
"""

import dataclasses
import os
import tempfile
import threading

from face_aging.data import labels as L
from face_aging.data.pipeline import printable
from face_aging.inference import videoio
from face_aging.inference.page_fields import (PageError, as_sent, explain, parse_age_now, parse_ages, parse_gender,
                                              quoted)

MAX_VIDEO_MB = 300                 # a minute of a phone's 1080p is about 130 MB; Gradio's upload limit is this one
MAX_VIDEO_FRAMES = 9000            # 5 minutes at 30 frames a second: about 15 minutes' aging of 720p on 2 cores
MAX_FRAME_PIXELS = 4096 * 2304     # 4K (a 4K frame ages at about 1 frame a second)
# The frames the clips being written hold at once (each writer encodes its own copy of every frame): four ages of
# 1080p with their side-by-side clips, or two of 4K.
MAX_WRITTEN_PIXELS = 25_000_000
MAX_FACES_SAID = 4                 # faces described in the summary; NAME_tracks.json has them all
AUTO = "auto"                      # the gender field's value for "each face's estimate"


def unavailable():
    """Why the page cannot age videos here (PyAV not installed: the message names the pip command), or None."""
    try:
        videoio.require_av()
    except videoio.VideoUnavailable as error:
        return str(error)
    return None


def video_kinds():
    """"MP4, MOV, M4V, MKV, WebM, AVI, 3GP": the suffixes videoio reads, as people write them."""
    return ", ".join("WebM" if e == ".webm" else e[1:].upper() for e in videoio.VIDEO_EXTENSIONS)


def parse_video_gender(value):
    """"auto" (each face's estimate; also an empty value, as the API may send) or "male"/"female"."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    return parse_gender(value) or AUTO


def written_pixels(width, height, ages, side_by_side):
    """The pixels a frame of the clips written at once holds: one clip per age, and each side-by-side clip (twice as
    wide, shrunk to at most video.SIDE_BY_SIDE_MAX_WIDTH)."""
    from face_aging.inference.video import SIDE_BY_SIDE_MAX_WIDTH
    side = 0
    if side_by_side:
        scale = min(1.0, SIDE_BY_SIDE_MAX_WIDTH / (2 * width))
        side = 2 * width * height * scale * scale
    return round(ages * (width * height + side))


@dataclasses.dataclass
class VideoResults:
    clips: list                   # (age, path of the aged clip) per age
    sides: list                   # (age, path of the side-by-side clip) per age, when asked
    files: list                   # every clip and NAME_tracks.json, for download
    summary: str                  # what the page says about the run


def describe_tracks(tracks, limit=MAX_FACES_SAID):
    """The faces followed, as the summary says them: "Face 1 (from frame 1, in 16 frames): male (estimated), 31 years
    old now (estimated)"; after `limit` faces, how many more."""
    lines = []
    for track in tracks[:limit]:
        line = f"Face {track['face']} (from frame {track['first_frame'] + 1}, in {track['frames']} frames)"
        if "gender" in track:
            line += (f": {track['gender']}" + (" (estimated)" if track["gender_from"] == "estimated" else "")
                     + f", {track['age']:.0f} years old now" + (" (estimated)" if track["age_from"] == "estimated"
                                                                  else ""))
        lines.append(line + ".")
    if len(tracks) > limit:
        lines.append(f"And {len(tracks) - limit} more faces (the downloads' _tracks.json lists them all).")
    return lines


def _frames_per_second(rate):
    return f"{float(rate):.3g} frames a second"


class Videos:
    """The page's video logic, apart from Gradio: `age()` checks a request, ages the clip into a new folder of
    `work_dir` and says how it went; `stop(session)` asks the run of that session to finish the clips so far."""

    def __init__(self, ager, work_dir, load_estimator=None):
        self.ager, self.work_dir, self.load_estimator = ager, work_dir, load_estimator
        self._running = {}                 # session -> threading.Event, set by stop()
        self._lock = threading.Lock()

    def stop(self, session):
        """Ask the run of `session` to stop; True when one was running."""
        with self._lock:
            event = self._running.get(session)
        if event is None:
            return False
        event.set()
        return True

    def check(self, path, ages, side_by_side):
        """The clip's name as the page shows it and its videoio.ClipInfo; PageError (VideoUnavailable without PyAV)
        saying why the page will not age it."""
        if not path or not isinstance(path, str):
            raise PageError("Upload a video first.")
        name = printable(os.path.basename(path))
        name = name if len(name) <= 60 else name[:40] + "..." + name[-17:]
        if not videoio.is_video(path):
            raise PageError(f"{name} is not a video the page takes ({video_kinds()}); photos go in the Photo "
                            f"tab.")
        try:
            size = os.stat(path).st_size
        except OSError:
            raise PageError("The uploaded video is no longer here (uploads are kept for an hour): upload it "
                            "again.") from None
        if size > MAX_VIDEO_MB * 2 ** 20:
            raise PageError(f"{name} is {size / 2 ** 20:,.1f} MB: the page takes videos of at most {MAX_VIDEO_MB} MB "
                            f"(test mode, --testdir, takes any).")
        info = self._open(path, name)
        if info.width * info.height > MAX_FRAME_PIXELS:
            raise PageError(f"{name} is {info.width}x{info.height}: the page ages clips up to 4K "
                            f"({MAX_FRAME_PIXELS / 1e6:.1f} megapixels a frame); make a smaller copy of it.")
        if info.frames > MAX_VIDEO_FRAMES:
            raise PageError(f"{name} has {info.frames:,} frames ({_frames_per_second(info.rate)}): the page ages at "
                            f"most {MAX_VIDEO_FRAMES:,} frames of a clip; cut it shorter.")
        count = len(ages)
        if written_pixels(info.width, info.height, count, side_by_side) > MAX_WRITTEN_PIXELS:
            most = 1
            while written_pixels(info.width, info.height, most + 1, side_by_side) <= MAX_WRITTEN_PIXELS:
                most += 1
            raise PageError(f"{count} ages of this {info.width}x{info.height} clip" + (", side by side too," if
                            side_by_side else "") + " is more than the page writes at a time (each age is a clip "
                            f"of its own): choose at most {most}.")
        return name, info

    def _open(self, path, name):
        try:
            reader = videoio.ClipReader(path)
        except videoio.VideoError as error:
            raise PageError(_named(error, path, name)) from None
        reader.close()
        return reader.info

    def age(self, path, ages, gender, age_now, side_by_side, session=None, progress=None):
        """Age the clip at `path` as the page's fields give it (ages as parse_ages takes them, gender "auto" or
        "male"/"female", age now empty for the estimate); `progress(VideoProgress)` after every frame. Returns
        VideoResults; PageError saying why when there is nothing to show."""
        from face_aging.faces import detect
        from face_aging.inference.video import VideoOptions, age_video, write_tracks
        ages = parse_ages(ages)
        gender = parse_video_gender(gender) if self.ager.takes_gender else AUTO
        input_age = parse_age_now(age_now)
        if not isinstance(side_by_side, bool):
            raise PageError(f"Side by side must be true or false, got {quoted(side_by_side)}.")
        videoio.require_av()
        self.ager.check_ages(ages)
        name, info = self.check(path, ages, side_by_side)
        detect.require_detector()
        options = VideoOptions(ages=tuple(ages), side_by_side=side_by_side, gender=gender, input_age=input_age)
        stop = threading.Event()
        with self._lock:
            self._running[session] = stop
        done = [0]

        def each_frame(p):
            done[0] = p.frame
            if progress is not None:
                progress(p)

        def should_stop():
            return stop.is_set() or done[0] >= MAX_VIDEO_FRAMES

        out_dir = tempfile.mkdtemp(dir=self.work_dir)
        try:
            result = age_video(path, self.ager, out_dir, options, each_frame, should_stop, self.load_estimator)
        except videoio.VideoError as error:
            raise PageError(_named(error, path, name)) from None
        finally:
            with self._lock:
                if self._running.get(session) is stop:
                    del self._running[session]
        if not result.face_frames:
            for clip in list(result.outputs.values()) + list(result.sides.values()):
                os.remove(clip)
            if result.stopped:
                raise PageError(f"Stopped at frame {result.frames} of {name}, before any face was found: nothing to "
                                f"show.")
            raise PageError(f"No face found in any of the {result.frames} frames of {name}. Try a clip where the "
                            f"face is larger, seen from the front and well lit.")
        clips = sorted(result.outputs.items(), key=lambda item: ages.index(item[0]))
        sides = sorted(result.sides.items(), key=lambda item: ages.index(item[0]))
        files = [p for _, p in clips] + [p for _, p in sides] + [write_tracks(result, out_dir)]
        return VideoResults(clips=clips, sides=sides, files=files,
                            summary=self._summary(result, name, info, ages, stop.is_set()))

    def _summary(self, result, name, info, ages, stopped_by_button):
        years = ", ".join(f"{a} years" for a in ages)
        rate = result.frames / result.seconds if result.seconds else 0.0
        lines = [f"{name}: {result.frames} frames ({_frames_per_second(info.rate)}), faces aged in "
                 f"{result.face_frames}, to {years}, in {result.seconds:.1f} s ({rate:.1f} frames a second)."]
        if result.stopped:
            why = "the Stop button" if stopped_by_button else f"the page's limit of {MAX_VIDEO_FRAMES:,} frames"
            of = f" of {result.expected}" if result.expected else ""
            lines.append(f"Stopped by {why} at frame {result.frames}{of}: the clips end there (playable).")
        if result.damage:
            lines.append(f"The clip is damaged: {result.damage}; the aged clips have the {result.frames} frames "
                         f"that were read.")
        if result.depth:
            lines.append(f"The clip is {result.depth} video; the aged clips are 8-bit H.264 (which every player "
                         f"shows) with its colour tags: smooth gradients may band.")
        lines += describe_tracks(result.tracks)
        if any("estimated" in (t.get("gender_from"), t.get("age_from")) for t in result.tracks):
            fields = "the gender or the age now" if self.ager.takes_gender else "the age now"
            lines.append(f"If an estimate is wrong, give {fields} and age the clip again (they then hold for every "
                         f"face).")
        return "  \n".join(lines)


def _named(error, path, name):
    """A videoio message with the upload's own path (a temporary folder) replaced by the file's name."""
    return str(error).replace(printable(path), name)


def progress_text(p):
    """The progress bar's words: "frame 40/300, 7.1 frames/s, 0:00:37 left"."""
    from face_aging.training.progress import format_duration
    total = f"/{p.frames}" if p.frames else ""
    left = f"{format_duration(p.seconds_left)} left" if p.seconds_left is not None else "time left unknown"
    return f"Aging: frame {p.frame}{total}, {p.fps:.1f} frames/s, {left}"


def build_video_tab(page, one_at_a_time):
    """The Video tab's components and events, inside the page's gr.Blocks (app.build_page): the API endpoints
    /age_video(video, ages, gender, age_now, side_by_side) -> (clips, downloads, summary) and /stop_video()."""
    import gradio as gr
    from face_aging.inference.faceinfo import bundled_estimator
    ager = page.ager
    videos = Videos(ager, page.work_dir, bundled_estimator)
    page.videos = videos
    missing = unavailable()

    def age(video, ages, gender, age_now, side_by_side, request: gr.Request, progress=gr.Progress()):
        progress(0.0, desc="Opening the video")

        def each_frame(p):
            known = p.frames if p.frames >= p.frame else None
            progress((p.frame, known), desc=progress_text(p), unit="frames")
        try:
            with page.busy:
                results = videos.age(video, ages, gender, age_now, side_by_side, request.session_hash, each_frame)
        except Exception as error:
            raise gr.Error(explain(error), duration=None, print_exception=False) from None
        shown = [(p, f"{a} years") for a, p in results.clips] + [(p, f"{a} years, side by side")
                                                                  for a, p in results.sides]
        return shown, results.files, results.summary

    def stop(request: gr.Request):
        if videos.stop(request.session_hash):
            gr.Info("Stopping: the clips written so far are being finished.")

    if missing:
        gr.Markdown(f"**Videos are not available here.** {missing}.")
    with gr.Row():
        with gr.Column(scale=1):
            video = gr.File(label=f"Video (MP4, MOV, WebM and others; up to {MAX_VIDEO_MB} MB)",
                            file_types=list(videoio.VIDEO_EXTENSIONS), type="filepath")
            ages = gr.Textbox(label="Target ages, in years (comma-separated; one clip for each)",
                              value=str(ager.default_ages[-1]), max_lines=1)
            gender = gr.Radio(label="Gender", choices=[("each face's estimate", AUTO)] + list(L.GENDER_NAMES),
                              value=AUTO, visible=ager.takes_gender)
            gender.preprocess = as_sent
            age_now = gr.Textbox(label="Their age now, in years (empty: each face's estimate)", value="",
                                 max_lines=1)
            side_by_side = gr.Checkbox(label="Also the input and the aged clip side by side", value=False)
            with gr.Row():
                go = gr.Button("Age this video", variant="primary", interactive=not missing)
                halt = gr.Button("Stop", variant="stop", interactive=not missing)
        with gr.Column(scale=2):
            summary = gr.Markdown()
            # Opened on the first clip, with a player (selected_index); the others are below it, a click away.
            clips = gr.Gallery(label="Aged clips", columns=2, height=480, object_fit="contain", selected_index=0)
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
    go.click(age, inputs=[video, ages, gender, age_now, side_by_side], outputs=[clips, downloads, summary],
             api_name="age_video", **one_at_a_time)
    # Not in the model's queue: it must reach the run it stops.
    halt.click(stop, inputs=None, outputs=None, api_name="stop_video", concurrency_limit=None,
               concurrency_id="stop", show_progress="hidden")
