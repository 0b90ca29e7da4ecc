"""The messages between the control plane and a media worker, and their validation on receipt.

Every message is a JSON object with a ``type``.  Requests (control plane → worker) carry an ``id``;
the worker answers each with ``reply`` (same id, ``result``) or ``error`` (same id, ``code``,
``message``).  Events (worker → control plane) carry no id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from media.contract import ConnectionQuality, MediaSettings, TrackInfo, TrackMapping
from media.stats import MediaStats

MAX_FRAME_BYTES: Final = 1 << 20  # an SDP with every codec is ~10 KB; anything near this is hostile

# Requests and the fields each must carry (name → accepted types).
REQUESTS: Final[dict[str, dict[str, tuple[type, ...]]]] = {
    "open": {"hearing_id": (str,), "settings": (dict,)},
    "publish": {
        "hearing_id": (str,),
        "participant_id": (str,),
        "sdp": (str,),
        "ice_servers": (list, type(None)),  # fresh (TURN credentials) for the new connections, or as before
    },
    "subscriber_answer": {"hearing_id": (str,), "participant_id": (str,), "sdp": (str,)},
    "set_muted": {"hearing_id": (str,), "participant_id": (str,), "kind": (str,), "muted": (bool,)},
    "set_paused": {"hearing_id": (str,), "paused": (bool,)},
    "set_video_priority": {"hearing_id": (str,), "participant_id": (str,)},  # "" for nobody
    "leave": {"hearing_id": (str,), "participant_id": (str,)},
    "stats": {"hearing_id": (str,)},
    "close": {"hearing_id": (str,)},
    "recording_start": {
        "hearing_id": (str,),
        "folder": (str,),
        "epoch": (float, int, type(None)),
        "min_free_bytes": (int,),
        "warn_free_bytes": (int,),
    },
    "recording_pause": {"hearing_id": (str,)},
    "recording_resume": {"hearing_id": (str,)},
    "recording_stop": {"hearing_id": (str,)},
    "ping": {},
}

# Event types the worker sends.
EVENTS: Final = frozenset({"subscriber_offer", "connection_state", "recorder_event", "load", "ready"})


class InvalidMessage(Exception):
    """A message that is not one of :data:`REQUESTS` with the right fields; ``request_id`` if it had one."""

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A validated request: its id, type and fields."""

    id: int
    type: str
    fields: dict[str, Any]


def parse_request(message: object) -> Request:
    """Validate a decoded message as a request; raises :class:`InvalidMessage` naming what is wrong."""
    if not isinstance(message, dict):
        raise InvalidMessage("a message must be a JSON object")
    request_id = message.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool) or request_id < 0:
        raise InvalidMessage("a request needs a non-negative integer id")
    kind = message.get("type")
    schema = REQUESTS.get(kind) if isinstance(kind, str) else None
    if schema is None or not isinstance(kind, str):
        raise InvalidMessage(f"unknown request type {kind!r}", request_id)
    fields: dict[str, Any] = {}
    for name, types in schema.items():
        value = message.get(name)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise InvalidMessage(f"{kind}: field {name!r} is missing or of the wrong type", request_id)
        fields[name] = value
    return Request(request_id, kind, fields)


_LOCAL_ONLY = frozenset({"ice_servers_source"})  # callables of the control plane: resolved before sending


def current_ice_servers(settings: MediaSettings) -> list[dict[str, Any]]:
    """The ICE servers a new connection would use now (fresh TURN credentials when there is a source)."""
    return settings.ice_servers_source() if settings.ice_servers_source else list(settings.ice_servers)


def settings_to_dict(settings: MediaSettings) -> dict[str, Any]:
    """A hearing's media settings as a message field (the ICE servers resolved now)."""
    data = {f.name: getattr(settings, f.name) for f in dataclasses.fields(MediaSettings)}
    for name in _LOCAL_ONLY:
        data.pop(name, None)
    data["ice_servers"] = current_ice_servers(settings)
    return data


def settings_from_dict(
    data: dict[str, Any], ice_servers_source: Callable[[], list[dict[str, Any]]] | None = None
) -> MediaSettings:
    """The media settings of an ``open`` request (unknown keys ignored, bad values refused)."""
    known = {f.name for f in dataclasses.fields(MediaSettings)} - _LOCAL_ONLY
    try:
        settings = MediaSettings(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise InvalidMessage(f"open: bad settings: {exc}") from exc
    if ice_servers_source is not None:
        settings = dataclasses.replace(settings, ice_servers_source=ice_servers_source)
    return settings


def stats_to_dict(stats: MediaStats) -> dict[str, Any]:
    """A worker's media counters and transit histogram as a ``load`` field."""
    return {
        **stats.counters(),
        "transit_buckets": list(stats.transit_buckets),
        "transit_count": stats.transit_count,
        "transit_sum_ns": stats.transit_sum_ns,
    }


def stats_from_dict(data: dict[str, Any]) -> MediaStats:
    """The media counters of a ``load`` report (unknown keys ignored)."""
    known = {f.name for f in dataclasses.fields(MediaStats)}
    return MediaStats(**{k: v for k, v in data.items() if k in known})


def mapping_to_dict(mapping: TrackMapping) -> dict[str, Any]:
    """A subscriber's transceiver mapping as a message field."""
    return dataclasses.asdict(mapping)


def mapping_from_dict(data: dict[str, Any]) -> TrackMapping:
    """The transceiver mapping of a ``subscriber_offer`` event."""
    return TrackMapping(mid=str(data["mid"]), participant_id=str(data["participant_id"]), kind=data["kind"])


def quality_from_dict(data: dict[str, Any]) -> ConnectionQuality:
    """One participant's connection quality from a ``stats`` reply."""
    return ConnectionQuality(**data)


def track_from_dict(data: dict[str, Any]) -> TrackInfo:
    """A track of a recorder event."""
    return TrackInfo(**data)
