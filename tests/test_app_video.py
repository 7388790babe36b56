"""The page's Video tab (face_aging/inference/page_video.py): the server started on a free loopback port with a tiny
CAAE run, as tests/test_app.py starts it, and driven through its HTTP API with Gradio's own client; the clips are
rendered here (face_aging.data.synthetic_video, as tests/test_video.py renders them) and read back with videoio.
Needs Gradio, PyAV and mtcnn."""

import asyncio
import os
import re
import shutil
import sys

import numpy as np
import pytest

from face_aging.inference import app, page_video
from face_aging.inference.agers import load_ager

av = pytest.importorskip("av")
pytest.importorskip("gradio")
pytest.importorskip("mtcnn")
client_lib = pytest.importorskip("gradio_client")

from face_aging.data.synthetic_video import render_clip  # noqa: E402
from face_aging.inference import flicker, videoio  # noqa: E402
# The page for a copy of the tiny CAAE run and a client of it: test_app's fixtures (a server of this module's own).
from test_app import client, gradio_client, served, tree, upright_photo  # noqa: E402,F401


def read_back(path):
    """(frames decoded, the nominal rate, (width, height), sound codecs) of a clip, as a player reads it."""
    reader = videoio.ClipReader(path)
    try:
        frames = sum(1 for _ in reader.frames())
        return frames, reader.info.rate, (reader.info.width, reader.info.height), reader.info.sound
    finally:
        reader.close()


def sent(path):
    return client_lib.handle_file(str(path))


def progress_seen(job):
    """Every progress unit the page reported to `job` (gradio_client keeps each status update in a queue)."""
    units = []
    while True:
        try:
            update = job.communicator.updates.get_nowait()
        except asyncio.QueueEmpty:
            return units
        units += getattr(update, "progress_data", None) or []


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """{name: path}: a talking clip with sound, a clip without a face, and bad files."""
    folder = tmp_path_factory.mktemp("page_clips")
    talk = render_clip(str(folder / "talk.mp4"), frames=12, sound="aac", persons=(2,))
    empty = render_clip(str(folder / "empty_room.mp4"), frames=6, face_frames=())
    good = open(talk.path, "rb").read()
    (folder / "garbage.mp4").write_bytes(b"not a video at all " * 50)
    (folder / "empty.mov").write_bytes(b"")
    (folder / "cut.mp4").write_bytes(good[:len(good) // 2])        # moov at the end: nothing left to read
    sound_only = av.open(str(folder / "sound_only.mp4"), "w")
    stream = sound_only.add_stream("aac", rate=48000)
    stream.layout = "stereo"
    from face_aging.data.synthetic_video import _sound
    for frame in _sound(stream, 0.3, "aac"):
        for packet in stream.encode(frame):
            sound_only.mux(packet)
    for packet in stream.encode():
        sound_only.mux(packet)
    sound_only.close()
    return {"talk.mp4": talk, "empty_room.mp4": empty, "garbage.mp4": str(folder / "garbage.mp4"),
            "empty.mov": str(folder / "empty.mov"),
            "cut.mp4": str(folder / "cut.mp4"), "sound_only.mp4": str(folder / "sound_only.mp4")}


def test_a_clip_is_aged_with_progress_and_offered_to_play_and_download(client, clips, served):
    """The aged clip has the input's frames, rate, size and sound on read-back, its face changed and the rest
    as it was; the side-by-side clip is twice as wide; the progress bar counted the frames with the time left; every
    file was written under the page's own folder, nothing into the run directory."""
    truth = clips["talk.mp4"]
    job = client.submit(sent(truth.path), "70", "male", "", True, api_name="/age_video")
    shown, downloads, summary = job.result(timeout=600)
    assert [item["caption"] for item in shown] == ["70 years", "70 years, side by side"]
    aged, side = shown[0]["video"], shown[1]["video"]
    source = read_back(truth.path)
    assert source[0] == 12
    assert read_back(aged) == source                                      # frames, rate, size, AAC sound
    frames, rate, size, sound = read_back(side)
    assert (frames, rate, sound) == (12, source[1], ["aac"]) and size == (2 * truth.width, truth.height)
    before, after = list(flicker.upright_frames(truth.path)), list(flicker.upright_frames(aged))
    for i in (0, 11):
        face = flicker.face_mask(before[i].shape, truth.boxes[i])
        change = np.abs(after[i].astype(float) - before[i])
        assert change[face].mean() > 4 and change[~face].mean() < 3, i
    assert sorted(os.path.basename(p) for p in downloads) == ["talk_age70.mp4", "talk_age70_side.mp4",
                                                              "talk_tracks.json"]
    assert summary.startswith("talk.mp4: 12 frames (25 frames a second), faces aged in 12, to 70 years, in ")
    assert "Face 1 (from frame 1, in 12 frames): male, " in summary and "years old now (estimated)" in summary
    units = progress_seen(job)
    counted = [u for u in units if u.unit == "frames"]
    assert counted and all(u.length == 12 and 1 <= u.index <= 12 for u in counted)
    assert all(f"frame {u.index}/12, " in u.desc and " frames/s, " in u.desc and u.desc.endswith(" left")
               for u in counted)
    server, savedir, run_before = served
    written = tree(os.path.join(server.root, "results"))
    assert {os.path.basename(n) for n in written} >= {"talk_age70.mp4", "talk_age70_side.mp4", "talk_tracks.json"}
    assert tree(savedir) == run_before


@pytest.mark.parametrize("name, message", [
    ("garbage.mp4", r"^garbage\.mp4: not a video FFmpeg can read \(.*\): damaged, truncated \(an interrupted copy or "
                    r"recording\?\) or not a video at all$"),
    ("cut.mp4", r"^cut\.mp4: not a video FFmpeg can read .*truncated"),
    ("empty.mov", r"^empty\.mov: empty file \(0 bytes\)$"),
    ("sound_only.mp4", r"^sound_only\.mp4 holds no video stream \(only audio\)$"),
    ("empty_room.mp4", r"^No face found in any of the 6 frames of empty_room\.mp4\. Try a clip where the face is "
                       r"larger"),
], ids=["garbage", "truncated", "empty", "sound_only", "no_face"])
def test_a_bad_video_gets_the_pages_message(client, clips, served, name, message):
    from gradio_client.exceptions import AppError
    path = clips[name] if isinstance(clips[name], str) else clips[name].path
    with pytest.raises(AppError, match=message) as refused:
        client.predict(sent(path), "70", "male", "", False, api_name="/age_video")
    said = str(refused.value)
    assert served[0].root not in said and "Something went wrong" not in said and len(said) < 300
    if name == "empty_room.mp4":                # nothing is offered, so nothing is kept
        assert not [n for n in tree(served[0].root) if n.endswith("empty_room_age70.mp4")]


def test_bad_fields_and_work_past_the_page_bounds_get_messages(client, clips, monkeypatch):
    from gradio_client.exceptions import AppError
    talk = sent(clips["talk.mp4"].path)
    for fields, message in (
            (("", "male", "", False), "Choose at least one target age."),
            (("70", "other", "", False), "The gender must be male or female, got 'other'."),
            (("70", "auto", "1e309", False), "The age now must be a number of years, got '1e309'."),
            (("70", "auto", "", "yes"), "Side by side must be true or false, got 'yes'.")):
        with pytest.raises(AppError) as refused:
            client.predict(talk, *fields, api_name="/age_video")
        assert str(refused.value) == message
    monkeypatch.setattr(page_video, "MAX_VIDEO_FRAMES", 10)
    with pytest.raises(AppError, match=r"^talk\.mp4 has 12 frames \(25 frames a second\): the page ages at most 10 "
                                       r"frames of a clip; cut it shorter\.$"):
        client.predict(talk, "70", "auto", "", False, api_name="/age_video")
    monkeypatch.setattr(page_video, "MAX_VIDEO_FRAMES", 9000)
    monkeypatch.setattr(page_video, "MAX_WRITTEN_PIXELS", 3 * 160 * 120)     # three frames of the 160x120 clip
    with pytest.raises(AppError, match=r"^3 ages of this 160x120 clip, side by side too, is more than the page writes "
                                       r"at a time \(each age is a clip of its own\): choose at most 1\.$"):
        client.predict(talk, "30, 50, 70", "auto", "", True, api_name="/age_video")
    monkeypatch.setattr(page_video, "MAX_VIDEO_MB", 0)
    with pytest.raises(AppError, match=r"^talk\.mp4 is 0\.\d MB: the page takes videos of at most 0 MB"):
        client.predict(talk, "70", "auto", "", False, api_name="/age_video")


def test_the_stop_button_finishes_the_clip_so_far(client, served, tmp_path):
    """Stop, sent by the session whose clip is being aged, ends it at the frame reached: a playable partial clip,
    said so; another session's Stop stops nothing."""
    import time

    def wait_for_frame(number):
        while True:
            done = [u.index for u in (job.status().progress_data or []) if u.unit == "frames"]
            if done and done[-1] >= number:
                return done[-1]
            assert not job.done(), job.result()
            time.sleep(0.05)
    truth = render_clip(str(tmp_path / "long.mp4"), frames=60, persons=(2,))
    job = client.submit(sent(truth.path), "70", "female", "40", False, api_name="/age_video")
    wait_for_frame(2)
    other = client_lib.Client(served[0].url, download_files=False, verbose=False)
    other.predict(api_name="/stop_video")
    going_on = wait_for_frame(wait_for_frame(1) + 3)
    client.predict(api_name="/stop_video")
    shown, downloads, summary = job.result(timeout=600)
    stopped = int(summary.split("Stopped by the Stop button at frame ")[1].split(" ")[0])
    assert going_on <= stopped < 60 and f"at frame {stopped} of 60: the clips end there (playable)" in summary
    assert os.path.basename(shown[0]["video"]) == "long_age70_partial.mp4"
    assert read_back(shown[0]["video"])[0] == stopped
    assert "female, 40 years old now." in summary                   # as the fields gave them, for every face


@pytest.mark.slow
def test_without_pyav_the_page_starts_and_names_the_pip_command(served, lively_run, tiny_config, monkeypatch,
                                                                  tmp_path):
    """`served` is not used meanwhile: one process serves one page at a time."""
    import urllib.request
    from gradio_client.exceptions import AppError
    from PIL import Image
    monkeypatch.setitem(sys.modules, "av", None)
    server = app.start(load_ager("caae", lively_run[0], architecture=tiny_config), port=0)
    try:
        with urllib.request.urlopen(server.url + "config", timeout=30) as response:
            config = response.read().decode()
        assert "Videos are not available here" in config and "requirements-video.txt" in config
        client = client_lib.Client(server.url, download_files=False, verbose=False)
        (tmp_path / "clip.mp4").write_bytes(b"never read")
        with pytest.raises(AppError, match=r'^Videos need PyAV, .*pip install "face-aging\[video\]"'):
            client.predict(sent(tmp_path / "clip.mp4"), "70", "auto", "", False, api_name="/age_video")
        Image.fromarray(upright_photo()).save(tmp_path / "holiday.jpg")
        assert client.predict(sent(tmp_path / "holiday.jpg"), api_name="/find_faces")[2].startswith("1 face found.")
    finally:
        server.close()


def test_a_photo_over_its_own_limit_gets_a_message(client, monkeypatch, tmp_path):
    """Gradio's upload limit is the videos' (300 MB): a photo is held to its own 50 MB by the page."""
    from gradio_client.exceptions import AppError
    from PIL import Image
    assert page_video.MAX_VIDEO_MB == 300 and app.MAX_PHOTO_MB == 50
    Image.fromarray(upright_photo()).save(tmp_path / "holiday.jpg")
    monkeypatch.setattr(app, "MAX_PHOTO_MB", 0)
    with pytest.raises(AppError, match=r"^holiday\.jpg is 0\.\d MB: the page takes photos of at most 0 MB\.$"):
        client.predict(sent(tmp_path / "holiday.jpg"), api_name="/find_faces")


def test_written_pixels_count_each_clip_and_shrunk_side_by_side():
    assert page_video.written_pixels(1920, 1080, 4, True) == 4 * 3 * 1920 * 1080
    # A 4K side-by-side clip is shrunk to 3,840 pixels wide: half its pixels.
    assert page_video.written_pixels(3840, 2160, 1, True) == 3840 * 2160 + 3840 * 1080
    assert page_video.MAX_FRAME_PIXELS >= 3840 * 2160
    assert page_video.written_pixels(3840, 2160, 2, True) <= page_video.MAX_WRITTEN_PIXELS


@pytest.mark.slow
def test_the_video_tab_in_a_real_browser(served, tmp_path):
    """Headless Chromium (where installed, as tests/test_app.py's browser check): the clip uploaded in the Video tab,
    the progress bar's frames and time left shown while it ages, then the aged clip playing in the page's player."""
    from test_app import CHROMIUM, CHROMIUM_ARGS
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    truth = render_clip(str(tmp_path / "walk.mp4"), width=192, height=144, frames=40, sound="aac", persons=(3,))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served[0].url, timeout=60000)
            page.get_by_role("tab", name="Video").click()
            page.locator("input[type=file]").nth(1).set_input_files(truth.path)
            page.get_by_text("walk.mp4").first.wait_for(timeout=120000)
            page.get_by_role("button", name="Age this video").click()
            page.get_by_text(re.compile(r"Aging: frame \d+/40, [\d.]+ frames/s, 0:00:\d\d left")).first.wait_for(
                timeout=60000)
            page.get_by_text("walk.mp4: 40 frames").wait_for(timeout=120000)
            player = page.locator("video[controls]").first
            player.evaluate("v => v.play()")
            page.wait_for_function("() => { const v = document.querySelector('video[controls]'); "
                                   "return v && v.currentTime > 0.2; }", timeout=120000)
            shown = player.evaluate("v => [v.src, v.videoWidth, v.videoHeight, v.error]")
        finally:
            browser.close()
    age = served[0].page.ager.default_ages[-1]                          # the field's starting value
    assert shown[0].endswith(f"/walk_age{age}.mp4") and shown[1:] == [192, 144, None]


def test_a_clip_longer_than_its_header_says_is_stopped_at_the_page_limit(lively_run, tiny_config, clips, tmp_path,
                                                                        monkeypatch):
    """The header's count is checked first; one that says fewer frames than the clip holds (or none) is stopped at
    the limit while aging, and the summary says so."""
    videos = page_video.Videos(load_ager("caae", lively_run[0], architecture=tiny_config), str(tmp_path))
    monkeypatch.setattr(page_video, "MAX_VIDEO_FRAMES", 5)
    check = page_video.Videos.check
    with pytest.raises(page_video.PageError, match="has 12 frames"):
        videos.age(clips["talk.mp4"].path, "70", "male", "30", False)

    def lying_header(self, path, ages, side_by_side):
        monkeypatch.setattr(page_video, "MAX_VIDEO_FRAMES", 50)
        try:
            return check(self, path, ages, side_by_side)
        finally:
            monkeypatch.setattr(page_video, "MAX_VIDEO_FRAMES", 5)
    monkeypatch.setattr(page_video.Videos, "check", lying_header)
    results = videos.age(clips["talk.mp4"].path, "70", "male", "30", False)
    assert "Stopped by the page's limit of 5 frames at frame 5 of 12: the clips end there (playable)." \
        in results.summary
    assert [os.path.basename(p) for _, p in results.clips] == ["talk_age70_partial.mp4"]
    assert read_back(results.clips[0][1])[0] == 5
    assert not videos.stop(None)                           # nothing runs now
