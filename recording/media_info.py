"""What a recorded segment file holds: codec, timeline span and the recorder's tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av

# Matroska tags the recorder writes into every segment's header.
TAG_HEARING_ID = "HEARING_ID"
TAG_PARTICIPANT_ID = "PARTICIPANT_ID"
TAG_TRACK_ID = "TRACK_ID"
TAG_KIND = "KIND"
TAG_SEGMENT = "SEGMENT"
TAG_EPOCH_UTC = "EPOCH_UTC"  # ISO-8601, the hearing timeline's zero
TAG_EPOCH_US = "EPOCH_UNIX_US"  # the same instant, exact, in microseconds since 1970
TAG_RECORDER = "RECORDER"
RECORDER_NAME = "hearing-server"

MEDIA_EXTENSIONS = frozenset({".webm", ".mkv", ".mka", ".mp4", ".m4a", ".ogg", ".opus", ".wav"})


@dataclass(frozen=True)
class MediaInfo:
    """One media file as read back from disk: stream facts and where it sits on the hearing timeline."""

    codec: str
    kind: str  # "audio" or "video"
    packets: int
    first_timestamp_s: float | None  # relative to the hearing epoch (the recorder's start)
    last_timestamp_s: float | None  # end of the last packet
    duration_s: float
    width: int | None
    height: int | None
    hearing_id: str | None
    participant_id: str | None
    track_id: str | None
    segment: int | None
    epoch_us: int | None

    @property
    def epoch(self) -> datetime | None:
        """The hearing timeline's zero as a UTC datetime."""
        if self.epoch_us is None:
            return None
        return datetime.fromtimestamp(self.epoch_us / 1_000_000, UTC)


def _int_tag(tags: dict[str, str], name: str) -> int | None:
    value = tags.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_media_info(path: Path | str) -> MediaInfo:
    """Read a media file's first stream by demuxing every packet (no decoding)."""
    with av.open(str(path)) as container:
        tags = {k.upper(): v for k, v in container.metadata.items()}
        stream = container.streams[0]
        ctx = stream.codec_context
        first: float | None = None
        last: float | None = None
        count = 0
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
            count += 1
        video = stream if isinstance(stream, av.VideoStream) else None
        return MediaInfo(
            codec=ctx.name if ctx is not None else "unknown",
            kind=tags.get(TAG_KIND, stream.type),
            packets=count,
            first_timestamp_s=first,
            last_timestamp_s=last,
            duration_s=(last - first) if first is not None and last is not None else 0.0,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            hearing_id=tags.get(TAG_HEARING_ID),
            participant_id=tags.get(TAG_PARTICIPANT_ID),
            track_id=tags.get(TAG_TRACK_ID),
            segment=_int_tag(tags, TAG_SEGMENT),
            epoch_us=_int_tag(tags, TAG_EPOCH_US),
        )
