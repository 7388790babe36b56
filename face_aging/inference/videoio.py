"""Reading and writing clips with PyAV, the optional `video` extra (its wheels bring their own FFmpeg, so nothing has
to be installed on the machine). The reader streams: it yields one decoded frame at a time and hands every sound
packet on as it comes, so memory does not grow with the clip's length.

What a written clip keeps of its input (docs/test_mode.md#videos): every frame, with its own timestamp (a variable
frame rate stays variable), the nominal frame rate, the display matrix (a phone's portrait clip stays stored
sideways and is shown upright), the colour tags, and every sound track as it is (copied packet for packet; a codec
an MP4 file cannot hold is re-encoded to AAC). The picture is re-encoded (H.264 at a quality the eye does not tell
from the input's; 8-bit, so a 10-bit or HDR clip keeps its colour tags but not its extra bits: depth_note). Subtitle
and data streams are not kept.
"""

import collections
import dataclasses
import fractions
import os
import uuid

import numpy as np

from face_aging.data.pipeline import printable
from face_aging.errors import FaceAgingError
from face_aging.fileio import TEMP_PREFIX, is_disk_full

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp")
INSTALL_HINT = ('pip install "face-aging[video]" (from a clone: pip install -r requirements-video.txt); PyAV\'s '
                'wheels bring their own FFmpeg')
# Sound codecs an MP4 file holds as they are; any other is re-encoded to AAC.
MP4_SOUND = ("aac", "mp3", "opus", "ac3", "eac3", "alac", "flac")
# The picture: libx264 at CRF 18 (visually lossless for most eyes; frames without a face come out as they went in,
# up to that), preset veryfast (at 720p it encodes several times faster than the aging runs).
H264_OPTIONS = {"crf": "18", "preset": "veryfast"}


class VideoUnavailable(FaceAgingError, RuntimeError):
    """PyAV is not installed; the message says which pip command adds it."""


class VideoError(FaceAgingError, ValueError):
    """A clip cannot be read or written; the message names the file and what is wrong."""


def is_video(path):
    return os.path.splitext(os.fsdecode(path))[1].lower() in VIDEO_EXTENSIONS


def require_av():
    """The av module, or VideoUnavailable naming the pip command."""
    try:
        import av
    except ImportError as error:
        detail = "" if error.name == "av" else f" (importing it failed: {error})"
        raise VideoUnavailable(f"Videos need PyAV, an optional extra that is not installed{detail}: "
                               f"{INSTALL_HINT}") from None
    return av


def _reason(error):
    """FFmpeg's words for an error, without PyAV's errno and file name."""
    return getattr(error, "strerror", None) or str(error)


@dataclasses.dataclass
class ClipInfo:
    path: str
    width: int                    # as stored (before the display matrix turns it)
    height: int
    rate: fractions.Fraction      # nominal frames per second (the stream's average)
    time_base: fractions.Fraction
    frames: int                   # the container's count, else duration x rate; 0 when neither is known
    duration: float               # seconds, 0 when unknown
    codec: str
    sound: list                   # codec names of the sound tracks


def rotation_of(frame):
    """The display rotation in quarter turns counter-clockwise (what a player does to the stored frame)."""
    degrees = getattr(frame, "rotation", 0) or 0
    return int(round(degrees / 90.0)) % 4


def _display_matrix(frame):
    """The frame's display matrix (9 ints, FFmpeg's layout) or None."""
    import av
    try:
        data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    except (AttributeError, KeyError, ValueError):
        return None
    if data is None:
        return None
    return [int(v) for v in np.frombuffer(bytes(data), dtype="<i4", count=9)]


class ClipReader:
    """One clip, opened for streaming. `frames(on_packet)` yields its decoded video frames in order and calls
    `on_packet(packet)` with each sound packet as the file interleaves them. VideoError (naming the file) when it
    cannot be opened or holds no video; damage found while reading ends the frames early and is kept in `damage`."""

    def __init__(self, path):
        av = require_av()
        self.path, self.damage, self.skipped = path, None, 0
        self.sound_damage = None
        self.last_pts = None
        shown = printable(path)
        if os.path.isdir(path):
            raise VideoError(f"{shown} is a folder, not a video")
        try:
            size = os.path.getsize(path)
        except OSError as error:
            raise VideoError(f"{shown}: cannot be read ({error.strerror or error})") from None
        if size == 0:
            raise VideoError(f"{shown}: empty file (0 bytes)")
        try:
            self.container = av.open(path, metadata_errors="replace")
        except av.FFmpegError as error:
            raise VideoError(f"{shown}: not a video FFmpeg can read ({_reason(error)}): damaged, truncated (an "
                             f"interrupted copy or recording?) or not a video at all") from None
        except OSError as error:
            raise VideoError(f"{shown}: cannot be read ({error.strerror or error})") from None
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams})
            self.container.close()
            raise VideoError(f"{shown} holds no video stream" + (f" (only {', '.join(kinds)})" if kinds else
                                                                 " (no streams at all)"))
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"      # frame threads: decoding a 4K frame takes a share of both cores
        self.sound = list(self.container.streams.audio)
        stream = self.video
        # Read now: PyAV 18.1.1 refuses a stream's attributes once its container is closed, and the writer asks for
        # the last frame's duration after the reader is done.
        self.stream_start, self.stream_duration, self.stream_frames = stream.start_time or 0, stream.duration, \
            stream.frames
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or fractions.Fraction(25)
        duration = (float(stream.duration * stream.time_base) if stream.duration else
                    float(self.container.duration) / 1e6 if self.container.duration else 0.0)
        frames = stream.frames or int(round(duration * float(rate)))
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        self.info = ClipInfo(path=path, width=stream.codec_context.width, height=stream.codec_context.height,
                             rate=fractions.Fraction(rate), time_base=stream.time_base, frames=frames,
                             duration=duration, codec=codec, sound=[s.codec_context.name for s in self.sound])

    def frames(self, on_packet=None):
        import av
        sound = set(s.index for s in self.sound)
        packets = self.container.demux(self.video, *self.sound)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as error:
                self.damage = f"reading stopped at damaged data ({_reason(error)})"
                break
            if packet.stream.index in sound:
                if on_packet is not None and packet.dts is not None:
                    on_packet(packet)
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as error:
                # One damaged packet: its frame is lost, the rest of the clip still decodes.
                self.skipped += 1
                self.damage = f"{self.skipped} damaged packet(s) did not decode ({_reason(error)})"
                continue
            for frame in decoded:
                if frame.pts is not None:
                    self.last_pts = frame.pts if self.last_pts is None else max(self.last_pts, frame.pts)
                yield frame

    def last_duration(self):
        """How long the last frame read lasts, in the stream's time base: to the stream's end as its header gives it,
        else None (the writer then repeats the frame before it)."""
        if self.last_pts is None or not self.stream_duration:
            return None
        end = self.stream_start + self.stream_duration
        return end - self.last_pts if end > self.last_pts else None

    def close(self):
        self.container.close()


def decode_sound(reader, packet):
    """A sound packet's frames, or None (noted in reader.damage) when it does not decode."""
    import av
    try:
        return packet.decode()
    except av.FFmpegError as error:
        reader.sound_damage = f"damaged sound dropped ({_reason(error)})"
        return None


def _interpolation(*names):
    from av.video.reformatter import Interpolation
    value = 0
    for name in names:
        value |= getattr(Interpolation, name)
    return value


# swscale's defaults round YUV -> RGB -> YUV down: every re-encoded frame came out about one grey level darker
# than the decoded input (and a frame without a face, passed through as decoded, did not), measured on a photo's
# frame. Reading with accurate rounding and full chroma interpolation, and writing with accurate rounding, gives the
# luma back exactly (mean difference 0.00) and the colours within half a grey level.
READ_FLAGS = ("BILINEAR", "ACCURATE_RND", "FULL_CHR_H_INT", "FULL_CHR_H_INP")
WRITE_FLAGS = ("BICUBIC", "ACCURATE_RND")


def to_rgb(frame):
    """A decoded frame as uint8 RGB [H, W, 3] as stored, read with its own colour matrix and range."""
    return frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None,
                            interpolation=_interpolation(*READ_FLAGS))


# FFmpeg's transfer characteristics of HDR video: SMPTE 2084 (PQ) and ARIB STD-B67 (HLG).
HDR_TRANSFER = {16: "PQ", 18: "HLG"}


def depth_note(frame):
    """What the aged clip cannot keep of a decoded frame's picture: None for 8-bit video, else e.g. "10-bit HDR
    (HLG)". The models and the blend work on 8-bit RGB, and the clip is written as 8-bit H.264 (which every player,
    the page's included, shows); the colour tags are kept, so an HDR clip stays HDR, but gradients may band."""
    bits = max((component.bits for component in frame.format.components), default=8)
    transfer = HDR_TRANSFER.get(int(getattr(frame, "color_trc", 0) or 0))
    if bits <= 8 and transfer is None:
        return None
    return f"{bits}-bit" + (f" HDR ({transfer})" if transfer else "")


def upright(image, quarter_turns):
    """The stored picture as a player shows it (turned `quarter_turns` counter-clockwise)."""
    return np.rot90(image, quarter_turns) if quarter_turns else image


def as_stored(image, quarter_turns):
    return np.rot90(image, -quarter_turns) if quarter_turns else image


def _copy_packet(av, packet):
    """A copy of a sound packet for one more output (muxing takes a packet's data)."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.duration, copy.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
    copy.is_keyframe = packet.is_keyframe
    for side in packet.iter_sidedata():
        copy.set_sidedata(side)
    return copy


class ClipWriter:
    """An MP4 file written beside `path` under a temporary name and renamed to `path` by close(): a run killed
    mid-clip never leaves a broken file under an output's name. Opened at the first frame, which sets the size and
    colour tags; `rotate` keeps the input's display matrix (False for a layout of upright frames: side by side)."""

    def __init__(self, path, reader, rotate=True):
        self.path, self.reader, self.rotate = path, reader, rotate
        self.container = None
        self.frames = 0
        self.last_pts = None
        self.previous_duration = None
        self.durations = collections.deque()     # of the frames sent to the encoder, in order
        self.held = None            # the frame written last, encoded once the next one gives its duration
        self.pending = []           # sound that came before the first picture, muxed once the file is open
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.temp = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}.mp4")

    def _fail(self, error):
        self.abort()
        if is_disk_full(error):
            return VideoError(f"Could not write {printable(self.path)}: {error.strerror or error} (the disk is full, "
                              f"or the file is over a size limit or quota)")
        return VideoError(f"Could not write {printable(self.path)}: {_reason(error)}")

    def _open(self, frame, width, height):
        av = require_av()
        info = self.reader.info
        container = av.open(self.temp, "w", format="mp4", options={"movflags": "+faststart"})
        self.container = container
        codec = next((c for c in ("libx264", "libopenh264", "mpeg4") if c in av.codecs_available), "mpeg4")
        stream = container.add_stream(codec, rate=info.rate, options=H264_OPTIONS if codec == "libx264" else {})
        stream.width, stream.height = width, height
        # No B-frames: packets then come in display order, so the file's sample durations are the frames' own
        # (a variable frame rate and the clip's duration stay exactly the input's).
        stream.codec_context.max_b_frames = 0
        # 4:2:0 needs even sides; an odd-sided clip keeps every pixel in 4:4:4 (fewer players show it).
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 or codec != "libx264" else "yuv444p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        context = stream.codec_context
        for name in ("colorspace", "color_range", "color_primaries", "color_trc"):
            value = getattr(frame, name, None)
            if value is not None and hasattr(context, name):
                try:
                    setattr(context, name, value)
                except (AttributeError, TypeError, ValueError):
                    pass
        matrix = _display_matrix(frame) if self.rotate else None
        if matrix is not None:
            stream.set_display_matrix(matrix)
        self.video = stream
        self.sound = {}
        for source in self.reader.sound:
            name = source.codec_context.name
            if name in MP4_SOUND:
                self.sound[source.index] = (container.add_stream_from_template(source), None)
            else:
                out = container.add_stream("aac", rate=source.codec_context.sample_rate or 48000)
                try:
                    out.layout = source.codec_context.layout
                except (AttributeError, ValueError):
                    pass
                self.sound[source.index] = (out, source)
        self.colour = (frame.colorspace or None, frame.color_range or None)
        pending, self.pending = self.pending, []
        for index, packet, decoded in pending:
            self._mux_sound(index, packet, decoded)

    def write(self, frame, image=None):
        """Encode one frame: the decoded `frame` as it is, or `image` (uint8 RGB as stored) in its place, at
        `frame`'s timestamp (kept strictly increasing). Each frame is held until the next one comes, which gives its
        duration (the last one's comes with close())."""
        av = require_av()
        try:
            if self.container is None:
                height, width = (frame.height, frame.width) if image is None else image.shape[:2]
                self._open(frame, width, height)
            # A clip whose frames change size part-way (rare, but legal) is scaled to the size it started with.
            width, height = self.video.width, self.video.height
            if image is None:
                out = frame.reformat(width, height, self.video.pix_fmt)    # the decoder's own frame if it fits
            else:
                colorspace, color_range = self.colour
                out = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(
                    width, height, self.video.pix_fmt, dst_colorspace=colorspace, dst_color_range=color_range,
                    interpolation=_interpolation(*WRITE_FLAGS))
            pts = frame.pts
            if pts is None:
                pts = 0 if self.last_pts is None else self.last_pts + 1
            if self.last_pts is not None and pts <= self.last_pts:
                pts = self.last_pts + 1          # equal or backward stamps (broken files) would stop the muxer
            out.pts, out.time_base = pts, self.reader.info.time_base
            out.pict_type = av.video.frame.PictureType.NONE
            self.last_pts = pts
            self._encode(out.pts)
            self.held = out
        except (av.FFmpegError, OSError) as error:
            raise self._fail(error) from None

    def _encode(self, next_pts, duration=None):
        """Encode the held frame, lasting until `next_pts` (or `duration` ticks)."""
        held, self.held = self.held, None
        if held is None:
            return
        duration = duration if duration is not None else next_pts - held.pts
        self.previous_duration = duration
        self.durations.append(int(duration) if duration and duration > 0 else None)
        self._mux_video(self.video.encode(held))
        self.frames += 1

    def _mux_video(self, packets):
        # Without B-frames packets come out in the order frames went in; each gets its frame's own duration (the
        # encoder gives the last one the average, which would change a variable-rate clip's length).
        for packet in packets:
            duration = self.durations.popleft() if self.durations else None
            if duration:
                packet.duration = duration
            self.container.mux(packet)

    def sound_packet(self, packet, decoded=None):
        """Mux a copy of one sound packet (or, for a codec MP4 cannot hold, encode `decoded`, its frames)."""
        av = require_av()
        if self.container is None:
            # Sound that comes before the first picture (the decoder's delay): kept until the file is opened.
            self.pending.append((packet.stream.index, _copy_packet(av, packet), decoded))
            return
        self._mux_sound(packet.stream.index, packet, decoded)

    def _mux_sound(self, index, packet, decoded):
        av = require_av()
        out, transcode = self.sound.get(index, (None, None))
        if out is None:
            return
        try:
            if transcode is None:
                copy = _copy_packet(av, packet)
                copy.stream = out
                self.container.mux(copy)
            else:
                for frame in decoded or ():
                    for encoded in out.encode(frame):
                        self.container.mux(encoded)
        except (av.FFmpegError, OSError) as error:
            raise self._fail(error) from None

    def close(self, path=None, last_duration=None):
        """Encode the last frame (lasting `last_duration` ticks; default: as long as the one before it), flush the
        encoders, finish the file and give it its name (`path`, default the one given); returns it."""
        av = require_av()
        if self.container is None:
            return None
        path = path or self.path
        try:
            if self.held is not None and last_duration is None and self.previous_duration:
                last_duration = self.previous_duration
            self._encode(None, last_duration)
            self._mux_video(self.video.encode())
            for out, transcode in self.sound.values():
                if transcode is not None:
                    for packet in out.encode():
                        self.container.mux(packet)
            self.container.close()
            self.container = None
            os.replace(self.temp, path)
        except (av.FFmpegError, OSError) as error:
            raise self._fail(error) from None
        return path

    def abort(self):
        """Drop the file (an error half-way)."""
        if self.container is not None:
            try:
                self.container.close()
            except Exception:           # noqa: BLE001 -- the file is removed anyway
                pass
            self.container = None
        if os.path.exists(self.temp):
            os.remove(self.temp)
