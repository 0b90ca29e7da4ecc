"""One track's segment files: opened with the hearing's tags, muxed frame by frame, fsynced and closed.

Matroska/WebM flushed per packet with 0.8-second clusters (measured: libavformat writes a video
frame out at once, audio a cluster at a time), timestamps in milliseconds on the hearing
timeline; used only from the recorder's writer thread.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container

from media.contract import EncodedFrame, TrackInfo
from recording import media_info as tags
from recording.codecs import codec_spec, opus_head, opus_packet_ms, vp8_keyframe_size
from recording.durable import fsync_dir

TRACKS_DIR = "tracks"
MUX_OPTIONS = {"flush_packets": "1", "cluster_time_limit": "800"}
_MS = Fraction(1, 1000)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SegmentInfo:
    """One segment file of one track, with its span on the hearing timeline (seconds from the epoch)."""

    path: str  # relative to the hearing folder
    participant_id: str
    track_id: str
    kind: str
    codec: str
    index: int
    width: int | None = None
    height: int | None = None
    first_time_s: float | None = None
    last_time_s: float | None = None
    frames: int = 0
    closed: bool = False


@dataclass
class Segment:
    """An open segment file and what has been muxed into it so far."""

    info: SegmentInfo  # as opened; counters below are folded in by snapshot()
    path: Path
    container: av.container.OutputContainer
    stream: Any
    first_pts: int = -1
    last_pts: int = -1
    frames: int = 0
    sync_fd: int = -1
    closed: bool = False

    def snapshot(self) -> SegmentInfo:
        """The segment's info with its span, frame count and closed flag as of now."""
        return replace(
            self.info,
            first_time_s=self.first_pts / 1000 if self.first_pts >= 0 else None,
            last_time_s=self.last_pts / 1000 if self.last_pts >= 0 else None,
            frames=self.frames,
            closed=self.closed,
        )


def frame_size(frame: EncodedFrame) -> tuple[int, int] | None:
    """A video keyframe's picture size (from the frame, or its VP8 header), else None."""
    if not frame.keyframe:
        return None
    if frame.width and frame.height:
        return frame.width, frame.height
    if frame.track.codec.lower() == "vp8":
        return vp8_keyframe_size(frame.data)
    return None


class SegmentWriter:
    """Names, opens, muxes into and closes the segment files of one hearing's tracks."""

    def __init__(self, folder: Path, hearing_id: str) -> None:
        self.folder = folder
        self.hearing_id = hearing_id
        self._names_used: dict[tuple[str, str], int] = {}

    def segment_path(self, track: TrackInfo, extension: str) -> tuple[int, Path]:
        """The next unused index and file path for a participant's track of this kind."""
        key = (track.participant_id, track.kind)
        index = self._names_used.get(key, 0)
        stem = _SAFE_NAME.sub("_", track.participant_id)
        while True:
            index += 1
            path = self.folder / TRACKS_DIR / f"{stem}-{track.kind}-{index:03d}.{extension}"
            if not path.exists():
                self._names_used[key] = index
                return index, path

    def open(self, track: TrackInfo, size: tuple[int, int] | None, epoch: float) -> Segment:
        """Create the track's next segment file, tagged with the hearing and its ``epoch``."""
        spec = codec_spec(track.codec)
        index, path = self.segment_path(track, spec.extension)
        container = av.open(str(path), "w", format=spec.container_format, options=dict(MUX_OPTIONS))
        epoch_dt = datetime.fromtimestamp(epoch, UTC)
        container.metadata.update(
            {
                tags.TAG_HEARING_ID: self.hearing_id,
                tags.TAG_PARTICIPANT_ID: track.participant_id,
                tags.TAG_TRACK_ID: track.track_id,
                tags.TAG_KIND: track.kind,
                tags.TAG_SEGMENT: str(index),
                tags.TAG_EPOCH_UTC: epoch_dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                tags.TAG_EPOCH_US: str(round(epoch * 1_000_000)),
                tags.TAG_RECORDER: tags.RECORDER_NAME,
            }
        )
        width, height = size if size is not None else (None, None)
        if track.kind == "video":
            stream = container.add_mux_stream(spec.codec_name, width=width or 640, height=height or 480)
        else:
            stream = _add_opus_stream(container, track.channels)
        stream.time_base = _MS
        info = SegmentInfo(
            path=str(path.relative_to(self.folder)),
            participant_id=track.participant_id,
            track_id=track.track_id,
            kind=track.kind,
            codec=spec.codec_name,
            index=index,
            width=width,
            height=height,
        )
        return Segment(info=info, path=path, container=container, stream=stream)

    @staticmethod
    def mux(segment: Segment, frame: EncodedFrame, seconds: float) -> None:
        """Write one frame at ``seconds`` on the hearing timeline; the first write makes the file durable."""
        # Wall clocks can step back (a new RTCP mapping); the container needs rising timestamps.
        pts = max(round(seconds * 1000), segment.last_pts + 1, 0)
        packet = av.Packet(frame.data)
        packet.stream = segment.stream
        packet.time_base = _MS
        packet.pts = packet.dts = pts
        if frame.track.kind == "audio":
            ms = opus_packet_ms(frame.data)
            if ms:
                packet.duration = max(1, round(ms))
        packet.is_keyframe = frame.keyframe or frame.track.kind == "audio"
        first_write = segment.last_pts < 0
        segment.container.mux(packet)
        segment.last_pts = pts
        segment.frames += 1
        if first_write:
            segment.first_pts = pts
            # The file exists from the header write on: make its directory entry durable.
            segment.sync_fd = os.open(segment.path, os.O_RDONLY)
            fsync_dir(segment.path.parent)

    @staticmethod
    def close(segment: Segment) -> None:
        """Finish the file and fsync it; the segment is marked closed even if that fails."""
        try:
            segment.container.close()
            if segment.sync_fd >= 0:
                os.fsync(segment.sync_fd)
        finally:
            if segment.sync_fd >= 0:
                os.close(segment.sync_fd)
                segment.sync_fd = -1
            segment.closed = True


def _add_opus_stream(container: av.container.OutputContainer, channels: int) -> Any:
    # A stream built from an unopened template is never opened as an encoder, so the
    # OpusHead we set stays (pre-skip 0: every recorded sample is kept).
    with av.open(io.BytesIO(), "w", format="webm") as scratch:
        template = scratch.add_stream("libopus", rate=48000)
        stream = container.add_stream_from_template(template)
    stream.codec_context.layout = "stereo" if channels == 2 else "mono"
    stream.codec_context.extradata = opus_head(channels)
    return stream
