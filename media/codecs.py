"""The hearing's codecs: one video codec on every leg (the sender uses the first negotiated one) and Opus."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from .contract import MediaSettings, TrackKind

VIDEO_CLOCK_RATE = 90000
# H.264 Constrained Baseline 3.1, non-interleaved: what browsers and aiortc both handle
H264_PROFILE_LEVEL_ID = "42e01f"


@dataclass(frozen=True)
class HearingCodec:
    """The codec one kind of media uses throughout the hearing."""

    name: str  # as in TrackInfo.codec: "VP8", "H264" or "opus"
    clock_rate: int
    channels: int
    preferences: list[RTCRtpCodecCapability]


def hearing_codec(settings: MediaSettings, kind: TrackKind) -> HearingCodec:
    """The codec and transceiver codec preferences for one kind of media."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        opus = [c for c in capabilities if c.mimeType.lower() == "audio/opus"]
        return HearingCodec("opus", opus[0].clockRate, opus[0].channels or 2, opus)
    wanted = f"video/{settings.video_codec}".lower()
    chosen = [
        c
        for c in capabilities
        if c.mimeType.lower() == wanted
        and (
            settings.video_codec != "H264"
            or str(c.parameters.get("profile-level-id", "")).lower() == H264_PROFILE_LEVEL_ID
        )
    ]
    if not chosen:
        raise ValueError(f"aiortc cannot send video codec {settings.video_codec}")
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return HearingCodec(settings.video_codec, VIDEO_CLOCK_RATE, 1, chosen[:1] + rtx)
