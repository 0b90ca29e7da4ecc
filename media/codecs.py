"""The hearing's codecs: one video codec on every leg (the sender uses the first negotiated one) and Opus."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from .contract import MediaSettings, TrackKind

VIDEO_CLOCK_RATE = 90000
_OPUS_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/2)?\r?$", re.MULTILINE | re.IGNORECASE)
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


def with_opus_fec(sdp: str) -> str:
    """``sdp`` with ``useinbandfec=1`` in each Opus fmtp (added if missing): senders then put in-band FEC
    in their audio, which a receiver uses to rebuild a lost packet from the next one (weak links)."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    for payload_type in {m.group(1) for m in _OPUS_RTPMAP.finditer(sdp)}:
        fmtp = f"a=fmtp:{payload_type} "
        existing = [i for i, line in enumerate(lines) if line.startswith(fmtp)]
        for index in existing:
            if "useinbandfec=" not in lines[index]:
                lines[index] += ";useinbandfec=1"
        if not existing:
            for index in reversed(
                [i for i, line in enumerate(lines) if line.startswith(f"a=rtpmap:{payload_type} ")]
            ):
                lines.insert(index + 1, f"{fmtp}useinbandfec=1")
    return newline.join(lines)
