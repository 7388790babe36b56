"""Test mode on videos (docs/test_mode.md#videos): `--testdir clip.mp4` (or a folder holding photos and videos) with
`--target_age` / `--ages` writes SAVEDIR/test/NAME_age{N}.mp4 for every clip and age, `--side_by_side` adds
NAME_age{N}_side.mp4, and NAME_tracks.json lists the faces followed. Photos in the same folder are aged as before
(caae/infer.py, pagan/infer.py); this module takes the videos.

The console shows a progress line (frames a second, time left); Ctrl-C (or SIGTERM) finishes the clip written so far
as NAME_age{N}_partial.mp4, playable, names it and exits with status 1; a second Ctrl-C stops at once (the files are
still finished).
"""

import logging
import os
import sys

from face_aging.training import progress as progress_line
from face_aging.data.pipeline import list_image_files, printable
from face_aging.errors import FaceAgingError, FlagError
from face_aging.fileio import shown_path
from face_aging.inference import videoio
from face_aging.inference.testmode import requested_ages
from face_aging.training.signals import StopRequest


class VideoStopped(FaceAgingError, RuntimeError):
    """A signal stopped the run; the message names the partial clips written."""


def plan(testdir, target_age, ages):
    """(photos: whether to run test mode on the images as before, videos: the clips to age) for --testdir.

    A video needs an age (FlagError for a clip given alone); a folder's videos without one, or without PyAV, are
    named in a warning and left out when the folder has photos too."""
    if os.path.isfile(testdir):
        videos, photos = ([testdir], False) if videoio.is_video(testdir) else ([], True)
    else:
        try:
            names = sorted(os.listdir(testdir))
        except OSError:
            return True, []                    # test mode's own reading of the folder says what is wrong
        videos = [os.path.join(testdir, n) for n in names
                  if videoio.is_video(n) and os.path.isfile(os.path.join(testdir, n))]
        photos = bool(list_image_files(testdir)) or not videos
    if not videos:
        return photos, videos
    shown = ", ".join(printable(os.path.basename(v)) for v in videos)
    if not requested_ages(target_age, ages):
        if not photos:
            what = "is a video" if os.path.isfile(testdir) else f"holds only videos ({shown})"
            raise FlagError(f"--testdir {printable(testdir)} {what}: give --target_age N or --ages A,B,... (one aged "
                            f"clip per age)")
        logging.warning("The video(s) in %s are left out: give --target_age N or --ages A,B,... to age them (one aged "
                        "clip per age): %s", printable(testdir), shown)
        return photos, []
    try:
        videoio.require_av()
    except videoio.VideoUnavailable as error:
        if not photos:
            raise
        logging.warning("The video(s) in %s are left out: %s: %s", printable(testdir), error, shown)
        return photos, []
    if len(videos) == 1 and not photos:
        videoio.ClipReader(videos[0]).close()      # a clip that cannot be read says so before any model loads
    return photos, videos


class _Stop(StopRequest):
    """As training's stop request, but what finishes after the signal is the clip so far."""

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        import signal
        self.signal = signal.Signals(signum).name
        sys.stdout.write("\n")
        logging.warning("%s received: finishing the clip(s) written so far (send it again to stop at once)",
                        self.signal)


class ConsoleProgress(progress_line.StatusLine):
    """`NAME: frame 120/300 [=====>    ] 6.1 frames/s, 0:00:29 left, 1 face`: in place on a terminal, a line every
    `interval` seconds otherwise (logs, CI)."""

    def __init__(self, stream=None, interval=10.0, width=24):
        progress_line.StatusLine.__init__(self, stream)
        self.interval, self.width = interval, width
        self.last = None

    def __call__(self, p):
        import time
        now = time.monotonic()
        end = p.frames and p.frame >= p.frames
        if not self.tty and self.last is not None and now - self.last < self.interval and not end:
            return
        self.last = now
        total = f"/{p.frames}" if p.frames else ""
        bar = f" [{progress_line.bar(p.frame / p.frames, self.width)}]" if p.frames else ""
        left = progress_line.format_duration(p.seconds_left) if p.seconds_left is not None else "?"
        self.write(f"\t{printable(os.path.basename(p.path))}: frame {p.frame}{total}{bar} {p.fps:.1f} frames/s, "
                   f"{left} left, {p.faces} face{'s' if p.faces != 1 else ''}")


def _say(result, shown):
    """The console's account of one clip."""
    name = printable(os.path.basename(result.path))
    for track in result.tracks:
        if "gender" not in track:
            continue
        parts = [f"{track['gender']}" + (" (estimated)" if track["gender_from"] == "estimated" else ""),
                 f"{track['age']:.0f} years old now" + (" (estimated)" if track["age_from"] == "estimated" else "")]
        # Frames counted from 1, as the page says them (NAME_tracks.json's first_frame is the index, from 0).
        print(f"\t{name}, face {track['face']} (from frame {track['first_frame'] + 1}, in {track['frames']} frames): "
              f"{', '.join(parts)}")
    if result.damage:
        logging.warning("%s: %s; the aged clip has the %d frame(s) that were read", name, result.damage,
                        result.frames)
    if result.depth:
        logging.warning("%s is %s video: the aged clip is 8-bit H.264, which every player shows, with the input's "
                        "colour tags; smooth gradients may band", name, result.depth)
    if not result.face_frames and not result.stopped:
        logging.warning("%s: no face found in any of its %d frames; the aged clip is the input, re-encoded", name,
                        result.frames)
    rate = result.frames / result.seconds if result.seconds else 0.0
    print(f"\t{name}: {result.frames} frames, faces aged in {result.face_frames} ({len(result.tracks)} face(s) "
          f"followed, {result.detections} full detections), {result.seconds:.1f} s ({rate:.1f} frames/s): "
          f"{', '.join(shown)}")


def run_videos(videos, ager, test_dir, options, load_estimator=None):
    """Age each clip (face_aging.inference.video.age_video) with a console progress line; returns the paths
    written. A clip that cannot be read stops the run when it is the only one, else is named and left out.
    VideoStopped after a signal, naming the partial clips."""
    from face_aging.faces import detect
    from face_aging.inference.video import age_video, write_tracks
    detect.require_detector()
    written, failed = [], []
    for number, path in enumerate(videos):
        console = ConsoleProgress()
        with _Stop() as stop:
            try:
                result = age_video(path, ager, test_dir, options, console, lambda: stop.signal is not None,
                                   load_estimator)
            except videoio.VideoError as error:
                console.newline()
                if len(videos) == 1:
                    raise
                logging.warning("%s; left out", error)
                failed.append(path)
                continue
            finally:
                console.newline()
        paths = list(result.outputs.values()) + list(result.sides.values())
        written += paths + [write_tracks(result, test_dir)]
        _say(result, [shown_path(p) for p in paths])
        if result.stopped:
            rest = len(videos) - number - 1
            wrote = (f"wrote {', '.join(shown_path(p) for p in paths)} (partial, playable)" if paths else
                     "nothing was written for it")
            raise VideoStopped(
                f"Stopped by {stop.signal or 'a second signal'} at frame {result.frames}"
                + (f" of {result.expected}" if result.expected else "") + f" of {printable(path)}: {wrote}"
                + (f"; {rest} more video(s) not started" if rest else "") + ". Run again to age the whole clip.")
    if failed and len(failed) == len(videos):
        raise videoio.VideoError(f"None of the {len(videos)} video(s) could be read (each is named above)")
    return written


def video_options(target_age, ages, side_by_side, detect_every, gender, input_age):
    from face_aging.inference.video import VideoOptions
    return VideoOptions(ages=tuple(requested_ages(target_age, ages)), side_by_side=side_by_side,
                        detect_every=detect_every, gender=gender, input_age=input_age)


def age_videos(options, videos, side_by_side=False, detect_every=10, ager=None):
    """Test mode on videos with the model test mode would use (testmode.TestOptions `options`)."""
    from face_aging.inference.agers import load_ager
    from face_aging.inference.faceinfo import bundled_estimator
    from face_aging.training.rundir import RunDir
    if ager is None:
        ager = load_ager(options.model, options.savedir, options.init_checkpoint, options.residual, options.config)
    ager.check_ages(requested_ages(options.target_age, options.ages))
    print(f"\tVideos: {len(videos)}")
    for line in ager.describe(options.input_age):
        print(f"\t{line}")
    return run_videos(videos, ager, RunDir(options.savedir).test,
                      video_options(options.target_age, options.ages, side_by_side, detect_every, options.gender,
                                    options.input_age), bundled_estimator)
