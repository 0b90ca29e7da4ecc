"""Errors the media plane reports to the live room."""

from __future__ import annotations

from enum import StrEnum


class MediaErrorCode(StrEnum):
    """Why a media request was refused; the live room maps these to protocol error codes."""

    SDP_INVALID = "sdp_invalid"
    CODEC_UNSUPPORTED = "codec_unsupported"
    MEDIA_UNSUPPORTED = "media_unsupported"
    NO_OFFER_PENDING = "no_offer_pending"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    ROUTER_CLOSED = "router_closed"
    CAPACITY_EXHAUSTED = "capacity_exhausted"  # every media worker is full
    WORKER_LOST = "worker_lost"  # the media worker hosting the hearing stopped


class MediaError(Exception):
    """A media request that cannot be carried out (bad SDP, unknown participant, closed router)."""

    def __init__(self, code: MediaErrorCode | str, message: str) -> None:
        super().__init__(f"{MediaErrorCode(code).value}: {message}")
        self.code = MediaErrorCode(code)
        self.message = message
