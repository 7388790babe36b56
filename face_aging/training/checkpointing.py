"""Checkpoints a training run can trust: one place for what CAAE, PAGAN and the age classifier do to save, restore
and stop safely (docs/reliability.md says what survives what).

- Killed at any moment (SIGKILL included). TensorFlow writes a checkpoint's files first (under `model-N_temp/`, then
  renamed) and the state file `checkpoint` last, atomically: the state file only ever names complete checkpoints, and
  a restart resumes from the newest one it names. `clean_stale_files` removes what an interrupted save or image write
  left behind (`model-N_temp/`, files of a `model-N` the state file never recorded, `.tmp-*`).
- A checkpoint that cannot be restored (truncated or missing file, another model, another image size or width):
  `restore` raises an error naming the file and the problem, and the older checkpoint that still restores if there is
  one; with on_bad="fallback" (--on_bad_checkpoint=fallback) it continues from that one, moves the bad ones to
  `checkpoint/set_aside/` (nothing is deleted) and rewrites the state file to match.
- A NaN or Inf: `check_finite` stops the run at the step a loss stops being finite, before anything is saved, and
  `save` refuses to write non-finite weights; the latest checkpoint always holds finite weights.
- A full disk or a file-size limit: `save` says so, removes the unfinished files, and the previous checkpoint is
  untouched (TensorFlow deletes the oldest checkpoint only after the new one is complete and recorded).
- SIGINT/SIGTERM during a save: handled once the save is complete (`deferred_signals`).
"""

import contextlib
import glob
import json
import logging
import math
import os
import re
import shutil
import signal
import threading
import time
import uuid

import tensorflow as tf

from face_aging.errors import FaceAgingError
from face_aging.fileio import atomic_write, is_disk_full, remove_stale_temp_files

CHECKPOINT_NAME = "model"
STATE_FILE = "checkpoint"
SET_ASIDE_DIR = "set_aside"
ON_BAD_CHECKPOINT = ("error", "fallback")
FALLBACK_FLAG = "--on_bad_checkpoint=fallback"

# Who wrote a checkpoint, from the top-level objects it holds: (phrase, objects that must all be present).
_WRITERS = (
    ("a CAAE run", ("encoder", "d_z")),
    ("a PAGAN run", ("discriminator", "opt_g")),
    ("an age-classifier (--model age) run", ("model", "best")),
    ("the original TF1 CAAE code", ("E_conv0",)),
)
KINDS = {"CAAE": "a CAAE run", "PAGAN": "a PAGAN run", "age": "an age-classifier (--model age) run"}
_IGNORED_KEYS = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/")
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointError(FaceAgingError):
    """A checkpoint cannot be read or written; the message names the file, the problem and what to do."""


class BadCheckpointError(CheckpointError):
    """The run's checkpoint cannot be restored (damaged, or written by another model or size)."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written (a full disk, a size limit); the previous one is intact."""

    def __str__(self):
        return self.args[0]


class NonFiniteError(FaceAgingError, FloatingPointError):
    """A loss or a weight became NaN or Inf; training stopped without saving it."""


class _UnreadableState(Exception):
    pass


# --- small helpers ---------------------------------------------------------------------------------------------------

def _first_line(error):
    """An error's message as one short line, without TensorFlow's op decorations."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:\w+\]$", "", text)


def checkpoint_step(prefix):
    """N of a `.../model-N` prefix, or None."""
    match = re.search(r"-(\d+)$", os.path.basename(prefix or ""))
    return int(match.group(1)) if match else None


def _checkpoint_files(prefix):
    return [f for f in [prefix + ".index"] + sorted(glob.glob(glob.escape(prefix) + ".data-*")) if os.path.isfile(f)]


def _prefixes_in(directory):
    """Prefixes of the model-N checkpoints with any file in `directory`, oldest first."""
    pattern = re.compile(rf"^({re.escape(CHECKPOINT_NAME)}-\d+)\.(index|data-\d+-of-\d+)$")
    found = {m.group(1) for m in map(pattern.match, os.listdir(directory)) if m} if os.path.isdir(directory) else ()
    return sorted((os.path.join(directory, p) for p in found), key=checkpoint_step)


def _at(prefix, unit):
    step = checkpoint_step(prefix)
    return f"{prefix} ({unit} {step})" if step is not None else prefix


def make_manager(checkpoint, directory, max_to_keep):
    """The CheckpointManager of a run: `directory/model-STEP`, the newest `max_to_keep` kept."""
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name=CHECKPOINT_NAME)


def _read_state(directory, name=STATE_FILE):
    """The CheckpointState of `directory` (absolute paths), None if there is no state file; _UnreadableState if the
    file exists but is not a checkpoint state."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        return None
    try:
        state = tf.train.get_checkpoint_state(directory, latest_filename=name)
    except Exception as error:  # a text-format parse error or an empty state
        raise _UnreadableState(_first_line(error)) from None
    if state is None or not state.model_checkpoint_path:
        raise _UnreadableState("not a checkpoint state: truncated or overwritten")
    return state


def _listed(state):
    """The checkpoints a state names, oldest first, the latest last."""
    paths = [p for p in state.all_model_checkpoint_paths if p != state.model_checkpoint_path]
    return paths + [state.model_checkpoint_path]


def _committed(directory, state):
    """Every checkpoint a state file in `directory` names: ours, and e.g. checkpoint.tf1 (an original TF1 run's state
    kept beside ours)."""
    committed = {os.path.abspath(p) for p in _listed(state)} if state else set()
    for name in os.listdir(directory):
        if name.startswith(STATE_FILE + ".") and not name.startswith(STATE_FILE + ".tmp"):
            with contextlib.suppress(_UnreadableState):
                other = _read_state(directory, name)
                committed |= {os.path.abspath(p) for p in _listed(other)} if other else set()
    return committed


def has_checkpoint(directory):
    """Whether `directory` has a checkpoint state file (readable or not): the run has saved before."""
    return os.path.isfile(os.path.join(directory, STATE_FILE))


# --- stale files -----------------------------------------------------------------------------------------------------

def _set_aside(path, directory):
    """Move a checkpoint (prefix: all its files) or a file into directory/set_aside/ under a free name; returns the
    new path."""
    folder = os.path.join(directory, SET_ASIDE_DIR)
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    files = _checkpoint_files(path) or [path]
    name, i = base, 1
    while glob.glob(os.path.join(glob.escape(folder), glob.escape(name)) + "*"):
        name, i = f"{base}.{i}", i + 1
    for f in files:
        os.replace(f, os.path.join(folder, name + f[len(path):]))
    return os.path.join(folder, name)


def clean_stale_files(directory, output_dirs=()):
    """Before a run starts: remove what an interrupted save or image write left behind.

    In `output_dirs`: `.tmp-*` files of atomic writes. In the checkpoint `directory`: TensorFlow's `model-N_temp/`
    staging folders and `checkpoint.tmp*` state files, and the files of a `model-N` newer than the state file's latest
    that the state file never recorded (a save killed before it was complete). Where there is no state file at all,
    such files are moved to set_aside/ rather than removed (they might be someone's checkpoints). Returns the paths
    removed or moved.
    """
    removed = []
    for folder in output_dirs:
        removed += remove_stale_temp_files(folder)
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if re.fullmatch(rf"{re.escape(CHECKPOINT_NAME)}-\d+_temp", name) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif re.fullmatch(rf"{re.escape(STATE_FILE)}\.tmp[0-9a-f]{{32}}", name) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    try:
        state = _read_state(directory)
    except _UnreadableState:
        return removed  # restore() reports it
    committed = _committed(directory, state)
    latest_step = checkpoint_step(state.model_checkpoint_path) if state else None
    for prefix in _prefixes_in(directory):
        if os.path.abspath(prefix) in committed or os.path.exists(prefix + ".meta"):  # .meta: a TF1 checkpoint
            continue
        if state is None:
            moved = _set_aside(prefix, directory)
            logging.warning("%s has checkpoint files but no state file: moved %s to %s (a save interrupted before it "
                            "was complete, or a run whose state file was lost); starting without them",
                            directory, os.path.basename(prefix), moved)
            removed.append(prefix)
        elif latest_step is not None and checkpoint_step(prefix) > latest_step:
            for f in _checkpoint_files(prefix):
                os.remove(f)
            removed.append(prefix)
    if removed:
        logging.info("Removed what an interrupted run left behind: %s", ", ".join(removed))
    return removed


# --- restore ---------------------------------------------------------------------------------------------------------

def checkpoint_writer(keys):
    """Who wrote a checkpoint with these keys ("a PAGAN run", ...), or None."""
    tops = {k.split("/")[0] for k in keys}
    for phrase, needed in _WRITERS:
        if all(n in tops for n in needed):
            return phrase
    return None


def _short(key):
    return key[:-len(_VALUE_SUFFIX)] if key.endswith(_VALUE_SUFFIX) else key


def _shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _expected_shapes(checkpoint):
    """{key: shape} of what `checkpoint` would write (written to memory, not to disk), or None."""
    probe = f"ram://face_aging_probe_{uuid.uuid4().hex}/{CHECKPOINT_NAME}"
    try:
        path = checkpoint.write(probe)
        return tf.compat.v1.train.NewCheckpointReader(path).get_variable_to_shape_map()
    except Exception:  # the diagnosis is then less precise, never wrong
        return None
    finally:
        with contextlib.suppress(Exception):
            for f in tf.io.gfile.glob(probe + "*"):
                tf.io.gfile.remove(f)


def diagnose(prefix, error, kind, expected=None, describe=""):
    """(fits, sentence): why checkpoint `prefix` failed to restore with `error`, naming the file. `fits` is False for
    a checkpoint of another model or shape, True for a damaged one."""
    index = prefix + ".index"
    if not os.path.isfile(index):
        return True, f"its index file {index} is missing"
    data = sorted(glob.glob(glob.escape(prefix) + ".data-*"))
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
    except Exception as e:
        if not data:
            return True, f"its data file {prefix}.data-00000-of-00001 is missing"
        return True, f"its index file {index} is truncated or corrupt ({_first_line(e)})"
    writer = checkpoint_writer(shapes)
    if writer and writer != KINDS.get(kind, writer):
        return False, f"{index} was written by {writer}, not by {KINDS[kind]} (is --savedir another model's run?)"
    if not data:
        return True, f"its data file {prefix}.data-00000-of-00001 is missing"
    data_name = data[0] if len(data) == 1 else prefix + ".data-*"
    for key in sorted(shapes):
        try:
            reader.get_tensor(key)
        except Exception as e:
            where = "" if key.startswith(_IGNORED_KEYS) else f", reading {_short(key)}"
            return True, f"its data file {data_name} is truncated or corrupt ({_first_line(e)}{where})"
    if expected:
        for key in sorted(expected):
            if key in shapes and list(shapes[key]) != list(expected[key]):
                return False, (f"{index} holds {_short(key)} with shape {_shape(shapes[key])}, but this model"
                               f"{describe} expects {_shape(expected[key])}: it was written with another "
                               f"--image_size or network width")
        missing = [k for k in sorted(expected) if k not in shapes and not k.startswith(_IGNORED_KEYS)]
        if missing:
            return False, (f"{index} lacks {len(missing)} of this model's variables, e.g. {_short(missing[0])} "
                           f"(written by another model or version?)")
    return True, f"{index}: {_first_line(error)}"


def restore(checkpoint, directory, kind, on_bad="error", describe="", error=BadCheckpointError, unit="step"):
    """Restore the run's checkpoint in `directory` into `checkpoint`; returns its prefix, or None if the run has none.

    `kind` is "CAAE", "PAGAN" or "age"; `describe` (" (32x32, ...)") says what this model is. When the newest
    checkpoint cannot be restored: with on_bad="error", `error` (a BadCheckpointError) names the file, the problem,
    and the newest older checkpoint that restores with the flag that uses it; with on_bad="fallback", that one is
    restored, the newer bad ones are moved to set_aside/ and the state file is rewritten, with a warning.
    """
    if on_bad not in ON_BAD_CHECKPOINT:
        raise ValueError(f"on_bad={on_bad!r}: one of {ON_BAD_CHECKPOINT}")
    state_file = os.path.join(directory, STATE_FILE)
    try:
        state = _read_state(directory)
        problem = None
    except _UnreadableState as why:
        state, problem = None, f"the checkpoint state file {state_file} is unreadable ({why})"
    if state is None and problem is None:
        return None
    candidates = _listed(state) if state else _prefixes_in(directory)
    expected = []  # computed once, on the first failure

    def attempt(prefix):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
            return None
        except Exception as e:  # truncated data is an IndexError, a bad index an OpError, a shape a ValueError, ...
            if not expected:
                expected.append(_expected_shapes(checkpoint))
            return diagnose(prefix, e, kind, expected[0], describe)

    bad = []  # (prefix, fits, sentence), newest first
    good = None
    for i, prefix in enumerate(reversed(candidates)):
        if i > 0 and not _checkpoint_files(prefix):
            continue  # an older checkpoint the manager already deleted
        result = attempt(prefix)
        if result is None:
            good = prefix
            break
        bad.append((prefix, *result))
    if good is not None and not bad and problem is None:
        return good

    if problem is not None:
        headline = f"Cannot resume the run in {directory}: {problem}."
    else:
        prefix, fits, sentence = bad[0]
        headline = f"Checkpoint {prefix} {'cannot be restored' if fits else 'does not fit this model' + describe}: " \
                   f"{sentence}."
    others = [b for b in bad if problem is not None or b is not bad[0]]
    if others:
        def same(p, s):  # the newest one's problem again, in its own files
            return problem is None and s.replace(p, bad[0][0]) == bad[0][2]
        headline += " Also unusable: " + "; ".join(
            f"{os.path.basename(p)} ({'the same problem' if same(p, s) else s})" for p, _, s in others) + "."
    if good is None:
        if problem is None and not bad[0][1]:
            advice = (" Run with the flags it was trained with (its options.json records them), or use another "
                      "--savedir.")
        else:
            advice = (f" No older checkpoint in {directory} restores; move that folder away (or use another --savedir) "
                      f"to start afresh.")
        raise error(headline + advice)
    to_move = [p for p, _, _ in bad if _checkpoint_files(p)]
    if on_bad != "fallback":
        what = "rebuild the state file and continue from it" if problem is not None else "continue from it"
        if to_move:
            what += (f" ({', '.join(os.path.basename(p) for p in to_move)} will be moved to "
                     f"{os.path.join(directory, SET_ASIDE_DIR)}, not deleted)")
        which = "The older checkpoint" if bad else "The checkpoint"
        raise error(f"{headline} {which} {_at(good, unit)} restores: pass {FALLBACK_FLAG} to {what}.")

    moved = [_set_aside(p, directory) for p in to_move]
    if problem is not None:
        moved.append(_set_aside(state_file, directory))
    bad_prefixes = {p for p, _, _ in bad}
    keep = [p for p in candidates[:candidates.index(good) + 1] if p not in bad_prefixes and _checkpoint_files(p)]
    _write_state(directory, keep, good, state)
    logging.warning("%s Continuing from %s (%s); set aside, not deleted: %s", headline, _at(good, unit), FALLBACK_FLAG,
                    ", ".join(moved) or "nothing (no files left)")
    return good


def _write_state(directory, keep, latest, state):
    """Rewrite the state file (atomically) to name `keep` (oldest first), `latest` last, as CheckpointManager writes
    it: relative paths, each with its timestamp."""
    stamps = {}
    if state is not None and len(state.all_model_checkpoint_timestamps) == len(state.all_model_checkpoint_paths):
        stamps = dict(zip(state.all_model_checkpoint_paths, state.all_model_checkpoint_timestamps))
    keep = [p for p in keep if p != latest] + [latest]
    quoted = lambda p: json.dumps(os.path.relpath(p, directory))  # noqa: E731 - a text-format string
    lines = [f"model_checkpoint_path: {quoted(latest)}"]
    lines += [f"all_model_checkpoint_paths: {quoted(p)}" for p in keep]
    lines += [f"all_model_checkpoint_timestamps: {stamps.get(p, time.time())!r}" for p in keep]
    if state is not None and state.last_preserved_timestamp:
        lines.append(f"last_preserved_timestamp: {state.last_preserved_timestamp!r}")
    with atomic_write(os.path.join(directory, STATE_FILE), "w") as f:
        f.write("\n".join(lines) + "\n")


# --- save ------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def deferred_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """SIGINT/SIGTERM arriving inside the block are handled (by the handler in place before it) when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append((signum, frame))) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum, frame in received:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def check_finite(values, step, latest=None, unit="step"):
    """NonFiniteError if any of `values` ({loss name: float}) is NaN or Inf, naming it, its value and the step."""
    bad = [(name, value) for name, value in values.items() if not math.isfinite(value)]
    if not bad:
        return
    name, value = bad[0]
    also = f" (also {', '.join(f'{n} {v}' for n, v in bad[1:])})" if len(bad) > 1 else ""
    raise NonFiniteError(f"Loss {name} is {value} at {unit} {step}{also}: training diverged, and stopped without "
                         f"saving. {_last_good(latest, unit)}")


def _last_good(latest, unit):
    if latest:
        return (f"The latest checkpoint, {_at(latest, unit)}, holds the last finite weights. Lower --learning_rate "
                f"(or the loss --weights) and run again: it continues from that checkpoint.")
    return "No checkpoint had been written yet. Lower --learning_rate (or the loss --weights) and run again."


def check_finite_weights(variables, step, latest=None, unit="step"):
    """NonFiniteError naming the first floating-point variable holding a NaN or Inf."""
    for variable in variables:
        if tf.as_dtype(variable.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(variable))):
            name = getattr(variable, "path", None) or variable.name
            raise NonFiniteError(f"Weights {name} are not finite at {unit} {step}: training diverged, and this "
                                 f"checkpoint was not written. {_last_good(latest, unit)}")


def _remove_unfinished(prefix):
    """Remove the files of a save that failed, unless a state file names them (then they are an earlier save's)."""
    shutil.rmtree(prefix + "_temp", ignore_errors=True)
    directory = os.path.dirname(prefix)
    try:
        committed = _committed(directory, _read_state(directory))
    except _UnreadableState:
        committed = set()
    if os.path.abspath(prefix) not in committed:
        for f in _checkpoint_files(prefix):
            with contextlib.suppress(OSError):
                os.remove(f)


def _why(error):
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = _first_line(error)
    return text.rsplit("; ", 1)[-1] if "; " in text else text  # "<file>; File too large" -> "File too large"


def save(manager, step, reason, variables=(), unit="step"):
    """Save checkpoint `model-STEP` with `manager`; returns its prefix.

    Refuses (NonFiniteError) if any of `variables` is not finite. A failed write (a full disk, a size limit) removes
    the unfinished files and raises CheckpointWriteError; the previous checkpoint is untouched. SIGINT/SIGTERM during
    the write are handled after it.
    """
    previous = manager.latest_checkpoint
    prefix = os.path.join(manager.directory, f"{CHECKPOINT_NAME}-{step}")
    if previous and os.path.abspath(previous) == os.path.abspath(prefix) and _checkpoint_files(prefix):
        return previous  # this step is saved already (rewriting it in place would risk the only copy)
    check_finite_weights(variables, step, previous, unit)
    with deferred_signals():
        try:
            path = manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:
            _remove_unfinished(prefix)
            kept = (f"the previous checkpoint {_at(previous, unit)} is intact, and the same command resumes from it"
                    if previous else "no earlier checkpoint exists; the same command starts the run again")
            room = ("make room on the disk (or raise the file-size limit or quota)" if is_disk_full(error)
                    or isinstance(error, tf.errors.ResourceExhaustedError) or "too large" in _why(error).lower()
                    or "space" in _why(error).lower() else "fix that")
            raise CheckpointWriteError(f"Could not write checkpoint {prefix} ({reason}): {_why(error)}; {kept} once "
                                       f"you {room}.") from None
    logging.info("Saved %s (%s)", path, reason)
    return path
