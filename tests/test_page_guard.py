"""The page's guard (face_aging/inference/page_guard.py) on its own: the addresses it answers to, the file references
it finds in a request, the uploads it knows, and its sweep. Through the real server: tests/test_app.py."""

import os
import time

import pytest

from face_aging.inference.page_guard import Addresses, Sweeper, Uploads, file_references


@pytest.mark.parametrize("host, origin", [("127.0.0.1:7860", None), ("localhost:7860", "http://localhost:7860"),
                                          ("[::1]:7860", "http://[::1]:7860"), ("127.0.0.2:7860", None),
                                          ("127.0.0.1:7860", "http://127.0.0.1:7860")])
def test_the_loopback_page_answers_its_own_names(host, origin):
    assert Addresses("127.0.0.1", 7860).refusal(host, origin) is None


@pytest.mark.parametrize("host, origin, why", [
    ("evil.example:7860", None, "Host 'evil.example:7860'"),               # DNS rebinding
    ("localhost.evil.example", None, "Host"), (None, None, "Host ''"), ("192.168.1.5:7860", None, "Host"),
    ("127.0.0.1:7860", "http://evil.example", "Origin 'http://evil.example'"),
    ("127.0.0.1:7860", "null", "Origin 'null'"),                             # a sandboxed frame, a file:// page
    ("127.0.0.1:7860", "http://127.0.0.1:8888", "Origin"),                  # another page on this machine
    ("127.0.0.1:7860", "ftp://127.0.0.1:7860", "Origin"), ("127.0.0.1:7860", "http://[::1:7860", "Origin")])
def test_other_names_and_sites_are_refused(host, origin, why):
    refusal = Addresses("127.0.0.1", 7860).refusal(host, origin)
    assert refusal.startswith("Refused: ") and why in refusal and len(refusal) < 300


def test_host_names_and_every_network():
    named = Addresses("photos.local", 80)
    assert named.refusal("photos.local", "http://photos.local") is None and named.refusal("evil.example", None)
    everywhere = Addresses("0.0.0.0", 7860)
    # Addresses as typed into a browser, and this machine's name; never a name someone else controls.
    assert everywhere.refusal("192.168.1.5:7860", "http://192.168.1.5:7860") is None
    assert everywhere.refusal("evil.example:7860", None)
    assert everywhere.refusal("192.168.1.5:7860", "http://evil.example")


def test_file_references_are_every_file_data_path():
    data = {"data": [{"path": "/a", "meta": {"_type": "gradio.FileData"}}, 1, [{"x": {"path": 5}}],
                     {"url": "http://x/y.jpg", "meta": {"_type": "gradio.FileData"}}, "path"],
            "event_data": None}
    assert list(file_references(data)) == ["/a", 5, None]


def test_uploads_know_only_their_own_files(tmp_path):
    uploads = Uploads()
    photo = tmp_path / "abc" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"x")
    uploads.add(str(photo))
    assert uploads.refusal(str(photo)) is None
    assert "is not a file uploaded to this page" in uploads.refusal(str(tmp_path))
    assert "is not a file uploaded to this page" in uploads.refusal(str(photo) + "/..")
    assert "is not a file uploaded to this page" in uploads.refusal(["/etc/passwd"])
    assert "by its URL is not fetched" in uploads.refusal(None)
    photo.unlink()
    assert uploads.refusal(str(photo)).startswith("The uploaded file is no longer here")
    uploads.forget_missing()
    assert str(photo) not in uploads


def make(path, age=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_sweep_deletes_what_is_older_than_its_age(tmp_path):
    root, results = tmp_path / "root", tmp_path / "root" / "results"
    old, young = make(root / "a" / "old.jpg", 7200), make(root / "b" / "young.jpg")
    make(results / "c" / "old.png", 7200)
    (root / "link").symlink_to(old)
    os.utime(root / "link", (time.time() - 7200,) * 2, follow_symlinks=False)
    for folder in (root / "a", results / "c"):                # emptied folders go once they are old too
        os.utime(folder, (time.time() - 7200,) * 2)
    sweeper = Sweeper(str(root), 600, 3600, keep=(str(results),))
    assert sweeper.sweep() == 3 and young.exists() and not old.exists()
    os.utime(root / "a", (time.time() - 7200,) * 2)          # deleting the file touched it
    os.utime(results / "c", (time.time() - 7200,) * 2)
    sweeper.sweep()
    remaining = sorted(os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs)
    assert remaining == ["b", "b/young.jpg", "results"]
    assert sweeper.sweep(now=time.time() + 7200) == 1 and os.listdir(root) == ["results"]


def test_the_sweep_outlives_a_failing_pass(tmp_path, monkeypatch):
    sweeper = Sweeper(str(tmp_path), 0.05, 3600)
    passes = []

    def sweep(now=None):
        passes.append(now)
        if len(passes) == 1:
            raise IsADirectoryError(21, "Is a directory")    # what killed Gradio's sweep
        return 0
    monkeypatch.setattr(sweeper, "sweep", sweep)
    sweeper.start()
    try:
        assert sweeper.wait_for_sweeps(3) and len(passes) >= 3
    finally:
        sweeper.stop()
