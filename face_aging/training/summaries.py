"""TensorBoard writers for training sessions that may be resumed.

A run resumed from checkpoint model-S trains steps S+1, S+2, ... again, and the killed session had already written
summaries for some of them: without care TensorBoard shows those steps twice, the old curve and the new one
overlapping. TensorBoard's loader purges such points when a session says where it starts: an Event with
`session_log.status = START` at step T makes it drop every point with step >= T seen before it (the first START of
a run only marks its beginning). `tf.summary.create_file_writer` has no way to write one, so the writer's own
ImportEvent op appends it to the session's event file, ahead of its summaries.
"""

import logging
import time

import tensorflow as tf


def session_writer(logdir, first_step):
    """A tf.summary file writer for a training session whose first summary step is `first_step` (the step after
    the checkpoint it resumed from, 1 for a new run); it starts with the START event TensorBoard purges on."""
    writer = tf.summary.create_file_writer(logdir)
    event = tf.compat.v1.Event(step=int(first_step), wall_time=time.time())
    event.session_log.status = tf.compat.v1.SessionLog.START
    resource = getattr(writer, "_resource", None)  # the writer's handle: no public API writes a raw Event
    if resource is None:
        logging.warning("Could not mark the start of this session in %s (this TensorFlow's summary writer has no "
                        "_resource): steps redone after a resume may show twice in TensorBoard", logdir)
        return writer
    tf.raw_ops.ImportEvent(writer=resource, event=event.SerializeToString())
    return writer
