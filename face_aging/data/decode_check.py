"""The one check a header and a tail cannot make: that the picture data between them decodes, and decodes cleanly.

A JPEG whose middle bytes are damaged keeps its start and end markers, so `pipeline.check_image` passes it, and
TensorFlow's decoder then fails on it mid-epoch with an error that names no file, or (libjpeg's "Corrupt JPEG data"
warnings, printed with no file name) returns a partly grey or shifted picture. Training entry points therefore
decode every file once, with the decoder training uses, before the run starts, and skip those that fail or warn;
libjpeg's warnings are caught on the way and never reach the console unnamed.

Cost: a full decode of each file (tens of seconds for UTKFace's 23,708 200x200 faces on 2 cores; BENCHMARKS.md).
Files that decoded are cached in a JSON file (in the run directory) by size and modification time, so a resumed run
only decodes what has changed. A failure is never cached: a file put right is used again.
"""

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import threading

import tensorflow as tf

from face_aging.fileio import atomic_write

CACHE_FILE = "decoded_files.json"
_CACHE_VERSION = 1


def failure_reason(error):
    """The skip reason of a file TensorFlow could not decode, from its error: one line, without the op
    decorations ("{{function_node ...}}", "[Op:DecodeJpeg]")."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]( name: \S*)?\s*$", "", text)
    return f"damaged picture data: it does not decode ({text})"


def unusable_reason(error):
    """The skip reason of a file whose reading failed: TensorFlow could not decode it (failure_reason), or the OS
    could not read it."""
    if isinstance(error, tf.errors.OpError):
        return failure_reason(error)
    return f"cannot be read ({getattr(error, 'strerror', None) or error})"


# libjpeg's warnings: it decodes past damaged data (an image comes back, partly grey or shifted) and prints
# "Corrupt JPEG data: ..." straight to the process's stderr, naming no file.
LIBJPEG_WARNING = re.compile(r"^(Corrupt JPEG data: .*|Premature end of JPEG file|Warning: unknown JFIF revision.*|"
                             r"Invalid SOS parameters for sequential JPEG|Inconsistent progression sequence.*)$",
                             re.MULTILINE)
_capture_lock = threading.Lock()


class _Captured:
    text = ""

    @property
    def warnings(self):
        return LIBJPEG_WARNING.findall(self.text)


@contextlib.contextmanager
def libjpeg_warnings():
    """Collect what C code writes to the process's stderr meanwhile (file descriptor 2, where libjpeg writes); on
    exit, the lines that are not libjpeg warnings go on to stderr. Yields an object whose `warnings` lists them.
    Where descriptor 2 cannot be redirected, nothing is captured."""
    captured = _Captured()
    with _capture_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            yield captured
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                captured.text = sink.read().decode("utf-8", "replace")
        rest = LIBJPEG_WARNING.sub("", captured.text).strip("\n")
        if rest.strip():
            sys.stderr.write(rest + "\n")


def warning_reason(warnings):
    """The skip reason of a JPEG that decoded only past damaged data."""
    first = warnings[0].strip()
    more = f" and {len(warnings) - 1} more" if len(warnings) > 1 else ""
    return f"damaged picture data: libjpeg decoded it past damage ({first!r}{more})"


def _stamp(path):
    status = os.stat(path)
    return [status.st_size, status.st_mtime_ns]


def _read_cache(cache, min_side):
    """{path: [size, mtime_ns]} of the files that decoded, or {} when there is no usable cache."""
    if not cache:
        return {}
    try:
        with open(cache) as f:
            record = json.load(f)
        if record.get("version") == _CACHE_VERSION and record.get("min_side") == min_side:
            return dict(record["decoded"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        # Only a cache: a damaged one costs the time of decoding again, nothing else.
        logging.info("Ignoring the decode cache %s (%s)", cache, error)
    return {}


def _write_cache(cache, min_side, decoded):
    try:
        with atomic_write(cache, "w") as f:
            json.dump({"version": _CACHE_VERSION, "min_side": min_side, "decoded": decoded}, f)
    except OSError as error:  # a full disk shows at the next write that matters; the run can go on without it
        logging.warning("Could not write the decode cache %s (%s); the next run decodes every file again", cache,
                        error)


def decode_rgb(contents, min_side=None):
    """Encoded JPEG/PNG bytes -> uint8 [H, W, 3]. Grey, grey+alpha, RGBA, palette, 16-bit and CMYK images come
    out as 8-bit RGB (alpha dropped, 16-bit scaled by 255/65535).

    With `min_side`, a JPEG at least twice that size (in its smaller side) is decoded at 1/2, 1/4 or 1/8 scale
    by libjpeg's DCT scaling, the smallest that keeps `min_side` pixels: a 8000x8000 photo is then decoded as
    1000x1000 (3 MB) instead of 192 MB, and in a fraction of the time.
    """
    def any_format():
        return tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    if min_side is None:
        return any_format()

    def scaled_jpeg():
        shape = tf.io.extract_jpeg_shape(contents)
        side = tf.minimum(shape[0], shape[1])
        index = tf.add_n([tf.cast(side // r >= min_side, tf.int32) for r in (2, 4, 8)])
        return tf.switch_case(index, [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r)
                                      for r in (1, 2, 4, 8)])
    return tf.cond(tf.io.is_jpeg(contents), scaled_jpeg, any_format)


def _decodes(paths, min_side):
    """The indices of `paths` whose files decode, decoded in parallel as training decodes them."""
    names = tf.constant([os.fsencode(p) for p in paths])

    def decode(i):
        # The image's size is an output, so the decode must run (a control dependency alone gets pruned).
        return i, tf.size(decode_rgb(tf.io.read_file(tf.gather(names, i)), min_side))
    dataset = (tf.data.Dataset.range(len(paths))
               .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
               .ignore_errors())
    return {int(i) for i, _ in dataset.as_numpy_iterator()}


def undecodable(paths, min_side=None, cache=None):
    """{path: reason} for the files in `paths` that do not decode with `decode_rgb(contents, min_side)`.

    `cache`: a JSON file remembering the files that decoded (by size and modification time), read and rewritten."""
    known = _read_cache(cache, min_side)
    decoded, pending = {}, []
    for path in paths:
        key = os.fsdecode(path)
        try:
            stamp = _stamp(path)
        except OSError:
            pending.append(path)  # the decode below says why
            continue
        if known.get(key) == stamp:
            decoded[key] = stamp
        else:
            pending.append(path)
    failed = {}
    if pending:
        with libjpeg_warnings() as captured:
            good = _decodes(pending, min_side)
        if captured.warnings:
            # Some file decoded past damage, and the parallel decode cannot say which: each one again, on its own.
            for i, path in enumerate(pending):
                if i not in good:
                    continue
                with libjpeg_warnings() as one:
                    try:
                        with open(path, "rb") as f:
                            decode_rgb(tf.constant(f.read()), min_side)
                    except (tf.errors.OpError, OSError):
                        pass
                if one.warnings:
                    good.discard(i)
                    failed[path] = warning_reason(one.warnings)
        for i, path in enumerate(pending):
            if i in good:
                try:
                    decoded[os.fsdecode(path)] = _stamp(path)
                except OSError:
                    pass
                continue
            if path in failed:
                continue
            # Few files fail: decode each again on its own for its error message.
            try:
                with open(path, "rb") as f:
                    decode_rgb(tf.constant(f.read()), min_side)
                decoded[os.fsdecode(path)] = _stamp(path)  # put right in the meantime
            except (tf.errors.OpError, OSError) as error:
                failed[path] = unusable_reason(error)
    if cache and (pending or len(decoded) != len(known)):
        _write_cache(cache, min_side, decoded)
    return failed
