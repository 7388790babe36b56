"""What keeps the page (face_aging/inference/app.py) its own, in front of Gradio: which requests it answers, which
files a request may name, and the sweep of its folder.

- Only its own address. A request whose Host is not a name the page is served under (loopback names, or what
  --host names) is refused: that is DNS rebinding, a site whose name was made to resolve to this machine. One whose
  Origin is another site is refused too: any web page the user visits could otherwise post files to the page
  (Gradio only withholds the CORS header from the answer; the request itself is still carried out).
- Only files uploaded to it. A request's file references ({"path": ...}, Gradio's FileData) must name a file the
  page's upload route wrote. Gradio puts any path under its folder on its list of temporary files before it looks
  at the file type, and its sweep died on the first folder it tried to os.remove: one request naming the upload
  folder kept every later upload on disk for the rest of the server's life. A path is checked before Gradio sees
  the request, against the paths the upload route answered with.
- Its own sweep. A thread deletes the files under the page's folder older than the age, and the folders left empty,
  whatever Gradio's own sweep does, and never dies of a file it cannot delete.
"""

import ipaddress
import json
import logging
import os
import socket
import stat
import threading
import time
from urllib.parse import urlsplit

from face_aging.inference.page_fields import quoted

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
UPLOAD_ROUTE = "/gradio_api/upload"
MAX_JSON_BODY = 4 * 1024 * 1024      # a request's fields; photos come through the upload route, not here


# --- Whose requests ----------------------------------------------------------------------------------------------

class Addresses:
    """The names the page answers to: loopback names and addresses, and `host` (--host). Serving every network
    (0.0.0.0), also this machine's name and any IP address: a rebinding attack needs a name it controls, never an
    address typed into the browser."""

    def __init__(self, host, port):
        self.port = port
        self.every_network = host in WILDCARD_HOSTS
        self.names = {"localhost", host.strip("[]").lower()} - {""}
        if self.every_network:
            self.names.add(socket.gethostname().lower())

    def allows(self, name):
        if not name:
            return False
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or self.every_network

    def refusal(self, host, origin):
        """Why a request with these Host and Origin headers is refused, or None."""
        try:
            host_name = urlsplit("//" + (host or "")).hostname
        except ValueError:
            host_name = None
        if not self.allows(host_name):
            return (f"Refused: the page answers to its own address only (Host {quoted(host or '')}); open it at "
                    f"http://127.0.0.1:{self.port}/")
        if origin is None:
            return None         # not from a browser page (curl, gradio_client), or a browser's own navigation
        try:
            parts = urlsplit(origin)
            origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            parts, origin_port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not self.allows(parts.hostname) \
                or origin_port != self.port:
            return (f"Refused: a request from another site (Origin {quoted(origin)}); the page takes requests from "
                    f"its own address only")
        return None


# --- Which files -------------------------------------------------------------------------------------------------

class Uploads:
    """The files the page's upload route wrote, by the path it answered with."""

    def __init__(self):
        self._paths = set()
        self._lock = threading.Lock()

    def add(self, path):
        with self._lock:
            self._paths.add(path)

    def __contains__(self, path):
        with self._lock:
            return path in self._paths

    def forget_missing(self):
        with self._lock:
            self._paths = {path for path in self._paths if os.path.lexists(path)}

    def refusal(self, path):
        """Why a request naming `path` as a file is refused, or None for an upload still here."""
        if path is None:
            return ("A photo or video must be sent as the path the upload answered with; a file named by its URL is "
                    "not fetched.")
        if not isinstance(path, str) or path not in self:
            return (f"The file {quoted(path)} is not a file uploaded to this page: upload the photo or video, and send "
                    f"the path the upload answered with.")
        try:
            status = os.lstat(path)
        except OSError:
            return "The uploaded file is no longer here (uploads are kept for an hour): upload it again."
        if not stat.S_ISREG(status.st_mode):
            return f"{quoted(path)} is not a file."
        return None


def _is_file_data(value):
    meta = value.get("meta")
    return "path" in value or isinstance(meta, dict) and meta.get("_type") == "gradio.FileData"


def file_references(value):
    """Every "path" of a dict in a request's JSON that is, or says it is, Gradio's FileData (None for one that has
    no path: a file given by its URL alone, which Gradio would fetch)."""
    if isinstance(value, dict):
        if _is_file_data(value):
            yield value.get("path")
        for item in value.values():
            yield from file_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from file_references(item)


# --- The ASGI middleware ------------------------------------------------------------------------------------------

async def _answer(send, status, body, content_type):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, status, message):
    await _answer(send, status, message.encode(), b"text/plain; charset=utf-8")


async def _refuse_file(send, message):
    # Gradio's own shape for a failed input check, which gradio_client raises as a ValidationError naming it.
    detail = {"detail": [{"__type__": "validate", "is_valid": False, "parameter_name": "photo", "message": message}]}
    await _answer(send, 422, json.dumps(detail).encode(), b"application/json")


class PageGuard:
    """ASGI middleware for the page's app (Gradio's FastAPI app, through launch(app_kwargs={"middleware": ...})):
    refuses requests from other addresses and sites, checks every file a JSON request names against `uploads`, and
    records the paths the upload route answers with into `uploads`."""

    def __init__(self, app, addresses, uploads):
        self.app, self.addresses, self.uploads = app, addresses, uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self.addresses.refusal(headers.get("host"), headers.get("origin"))
        if refusal:
            logging.warning("%s %s: %s", scope.get("method", "WEBSOCKET"), quoted(scope["path"]), refusal)
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _refuse(send, 403, refusal)
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/") == UPLOAD_ROUTE:
            return await self.app(scope, receive, self._recording(send))
        if headers.get("content-type", "").lower().startswith("multipart/"):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_JSON_BODY:
                return await _refuse(send, 413, f"Refused: a request of over {MAX_JSON_BODY // 2 ** 20} MB; the "
                                                f"page's fields are a few words (photos go through the upload)")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None                      # not JSON: FastAPI says so
        for path in file_references(data):
            refusal = self.uploads.refusal(path)
            if refusal:
                logging.warning("POST %s: %s", quoted(scope["path"]), refusal)
                return await _refuse_file(send, refusal)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await self.app(scope, replay, send)

    def _recording(self, send):
        """`send` that also records the paths of a successful upload's answer (a JSON list of paths)."""
        state = {"status": None, "body": b""}

        async def recording_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and state["status"] == 200:
                state["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    try:
                        paths = json.loads(state["body"])
                    except ValueError:
                        paths = []
                    for path in paths if isinstance(paths, list) else []:
                        if isinstance(path, str):
                            self.uploads.add(path)
            await send(message)
        return recording_send


# --- The sweep ----------------------------------------------------------------------------------------------------

class Sweeper:
    """Every `every` seconds, in its own thread: the files under `root` last modified more than `age` seconds ago are
    deleted, then the folders left empty (but `root` and `keep`). `lock` is held while sweeping, so that a request
    holding it (the page's) never loses its photo halfway."""

    def __init__(self, root, every, age, keep=(), lock=None, uploads=None):
        self.root, self.every, self.age = root, every, age
        self.keep = {os.path.abspath(root)} | {os.path.abspath(k) for k in keep}
        self.lock, self.uploads = lock or threading.Lock(), uploads
        self.sweeps = 0
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread = None

    def sweep(self, now=None):
        """One sweep; the number of files deleted."""
        now = time.time() if now is None else now
        removed = 0
        for folder, folders, files in os.walk(self.root, topdown=False):
            # Links are deleted as they are (os.walk lists a link to a folder among the folders, unfollowed).
            for name in files + [f for f in folders if os.path.islink(os.path.join(folder, f))]:
                path = os.path.join(folder, name)
                try:
                    if now - os.lstat(path).st_mtime > self.age:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
                except OSError as error:
                    logging.warning("The page's sweep could not delete %s (%s)", quoted(path, 200), error)
            if os.path.abspath(folder) in self.keep:
                continue
            try:
                if not os.listdir(folder) and now - os.lstat(folder).st_mtime > self.age:
                    os.rmdir(folder)
            except OSError:
                pass                  # filled meanwhile, or gone: the next sweep sees
        if self.uploads is not None:
            self.uploads.forget_missing()
        return removed

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                with self.lock:
                    self.sweep()
            except Exception:        # the sweep must outlive anything one pass meets
                logging.exception("The page's sweep of %s failed; it runs again in %g s", self.root, self.every)
            with self._done:
                self.sweeps += 1
                self._done.notify_all()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="page-sweep", daemon=True)
        self._thread.start()
        return self

    def wait_for_sweeps(self, count=1, timeout=60):
        """Wait until `count` more sweeps have finished; False if they did not within `timeout` seconds."""
        with self._done:
            target = self.sweeps + count
            return self._done.wait_for(lambda: self.sweeps >= target, timeout)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
