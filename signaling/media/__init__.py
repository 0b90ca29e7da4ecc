"""The SFU of hearing-server: forwards encoded frames between the participants of one hearing.

No transcoding and no web framework here; the live room drives a :class:`Router` through the
interfaces in :mod:`signaling.media.contract`.
"""

from __future__ import annotations

from .aiortc_adapter import install_host_addresses, uninstall_host_addresses
from .contract import (
    ConnectionQuality,
    ConnectionState,
    EncodedFrame,
    FrameSink,
    MediaEvents,
    MediaRouter,
    MediaSettings,
    TrackInfo,
    TrackKind,
    TrackMapping,
)
from .errors import MediaError, MediaErrorCode
from .router import Router

__all__ = [
    "ConnectionQuality",
    "ConnectionState",
    "EncodedFrame",
    "FrameSink",
    "MediaError",
    "MediaErrorCode",
    "MediaEvents",
    "MediaRouter",
    "MediaSettings",
    "Router",
    "TrackInfo",
    "TrackKind",
    "TrackMapping",
    "install_host_addresses",
    "uninstall_host_addresses",
]
