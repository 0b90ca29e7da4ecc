"""The signaling messages (docs/protocol.md): typed client messages, their parsing, and server messages."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from hearing_server.domain.errors import HearingError

MAX_SDP_CHARS = 65536
NOTICE_LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")


class ErrorCode(StrEnum):
    """Protocol error codes sent in ``error`` messages."""

    BAD_JSON = "bad_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    NOT_JOINED = "not_joined"
    JOIN_TIMEOUT = "join_timeout"
    ALREADY_JOINED = "already_joined"
    NOT_AUTHENTICATED = "not_authenticated"
    FORBIDDEN = "forbidden"
    INVALID_STATE = "invalid_state"
    NOTICE_MISMATCH = "notice_mismatch"
    HEARING_NOT_OPEN = "hearing_not_open"
    HEARING_CLOSED = "hearing_closed"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_REVOKED = "invitation_revoked"
    INVITATION_INVALID = "invitation_invalid"
    HEARING_FULL = "hearing_full"
    MEDIA_ERROR = "media_error"
    NOT_FOUND = "not_found"
    RECORDING_UNAVAILABLE = "recording_unavailable"
    INTERNAL_ERROR = "internal_error"


class CloseCode:
    """WebSocket close codes the server uses (docs/protocol.md §1)."""

    LEFT = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    HEARING_ENDED = 4000
    REMOVED = 4001
    REPLACED = 4002
    DENIED = 4003
    JOIN_FAILED = 4004


class ProtocolError(Exception):
    """A message that cannot be accepted; answered with ``error{code, message, field?}``."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra


Ref = Annotated[str, Field(max_length=64)]
Id = Annotated[str, Field(min_length=1, max_length=128)]
Sdp = Annotated[str, Field(min_length=1, max_length=MAX_SDP_CHARS)]
Kind = Literal["audio", "video"]
Language = Literal["kk", "ru", "en"]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ClientMessage(BaseModel):
    """Fields every client message may carry."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    ref: Ref | None = None


class Join(ClientMessage):
    """First message: a party's invitation token, or a staff member's hearing and seat."""

    type: Literal["join"]
    token: Annotated[str, Field(min_length=16, max_length=128)] | None = None
    hearing_id: Id | None = None
    as_: Literal["courtroom", "observer"] | None = Field(None, alias="as")
    language: Language | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> Join:
        if (self.token is None) == (self.hearing_id is None):
            raise ValueError("give either token (party) or hearing_id and as (staff)")
        if self.hearing_id is not None and self.as_ is None:
            raise ValueError("staff join needs as: courtroom or observer")
        if self.token is not None and self.as_ is not None:
            raise ValueError("as is for staff joins only")
        return self


class ShowNotice(ClientMessage):
    """Show the recording notice in another language."""

    type: Literal["show_notice"]
    language: Language


class ConfirmNotice(ClientMessage):
    """The party confirms the recording notice they were shown."""

    type: Literal["confirm_notice"]
    language: Language
    notice_sha256: Sha256Hex


class Ready(ClientMessage):
    """The party enters the waiting room."""

    type: Literal["ready"]


class PublishOffer(ClientMessage):
    """The client's offer for its publish connection."""

    type: Literal["publish_offer"]
    sdp: Sdp


class SubscribeAnswer(ClientMessage):
    """The client's answer to the server's subscribe offer."""

    type: Literal["subscribe_answer"]
    sdp: Sdp


class MuteSelf(ClientMessage):
    """The participant turns their own microphone or camera off or on."""

    type: Literal["mute_self"]
    kind: Kind
    muted: bool


class SetAudioOnly(ClientMessage):
    """The participant stops (or restarts) video."""

    type: Literal["set_audio_only"]
    audio_only: bool


class Leave(ClientMessage):
    """The participant leaves the hearing."""

    type: Literal["leave"]


class Ping(ClientMessage):
    """Application-level liveness check."""

    type: Literal["ping"]


class OpenWaitingRoom(ClientMessage):
    """Operator: open the waiting room."""

    type: Literal["open_waiting_room"]


class Admit(ClientMessage):
    """Operator: admit a waiting party."""

    type: Literal["admit"]
    party_id: Id


class AdmitReturning(ClientMessage):
    """Operator: re-admit every party waiting to return after an interruption."""

    type: Literal["admit_returning"]


class Deny(ClientMessage):
    """Operator: deny a waiting party entry."""

    type: Literal["deny"]
    party_id: Id


class Start(ClientMessage):
    """Operator: start the hearing."""

    type: Literal["start"]


class Mute(ClientMessage):
    """Operator: the court mutes a participant's audio or video."""

    type: Literal["mute"]
    party_id: Id
    kind: Kind


class Unmute(ClientMessage):
    """Operator: lift the court's mute."""

    type: Literal["unmute"]
    party_id: Id
    kind: Kind


class RequestUnmute(ClientMessage):
    """Operator: ask a participant to unmute themselves."""

    type: Literal["request_unmute"]
    party_id: Id
    kind: Kind = "audio"


class Remove(ClientMessage):
    """Operator: remove a participant and revoke their link."""

    type: Literal["remove"]
    party_id: Id


class Recess(ClientMessage):
    """Operator: call a recess."""

    type: Literal["recess"]


class Resume(ClientMessage):
    """Operator: resume after a recess."""

    type: Literal["resume"]


class End(ClientMessage):
    """Operator: end the hearing."""

    type: Literal["end"]


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    Join, ShowNotice, ConfirmNotice, Ready, PublishOffer, SubscribeAnswer, MuteSelf, SetAudioOnly, Leave,
    Ping, OpenWaitingRoom, Admit, AdmitReturning, Deny, Start, Mute, Unmute, RequestUnmute, Remove, Recess,
    Resume, End,
)  # fmt: skip
AnyClientMessage = Annotated[Union[CLIENT_MESSAGES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


def message_type(cls: type[ClientMessage]) -> str:
    """The ``type`` tag of a client message class."""
    return str(get_args(cls.model_fields["type"].annotation)[0])


OPERATOR_COMMANDS: frozenset[type[ClientMessage]] = frozenset(
    {
        OpenWaitingRoom,
        Admit,
        AdmitReturning,
        Deny,
        Start,
        Mute,
        Unmute,
        RequestUnmute,
        Remove,
        Recess,
        Resume,
        End,
    }
)


class MessageParser:
    """Turns one text frame into a typed client message, or raises :class:`ProtocolError`."""

    def __init__(self) -> None:
        self._adapter: TypeAdapter[ClientMessage] = TypeAdapter(AnyClientMessage)
        self._types = frozenset(message_type(cls) for cls in CLIENT_MESSAGES)

    def parse(self, text: str) -> ClientMessage:
        """Parse and validate ``text``."""
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(ErrorCode.BAD_JSON, "the message is not valid JSON") from exc
        if not isinstance(value, dict):
            raise ProtocolError(ErrorCode.BAD_JSON, "the message must be a JSON object")
        surrogate_at = lone_surrogate_path(value)
        if surrogate_at is not None:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"{surrogate_at or 'message'}: a lone surrogate is not a character",
                field=surrogate_at or None,
            )
        kind = value.get("type")
        if not isinstance(kind, str) or kind not in self._types:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown or missing message type")
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            loc = [str(p) for p in first["loc"][1:]]  # drop the union tag
            field = ".".join(loc) or None
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE, f"{field or 'message'}: {first['msg']}"[:300], field=field
            ) from exc
        except RecursionError as exc:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "the message is nested too deeply") from exc


_SURROGATES = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    return _SURROGATES.search(text) is not None


def lone_surrogate_path(value: Any) -> str | None:
    """Where a string (key or value) of parsed JSON holds a lone surrogate (``\\ud800``), which no UTF-8
    text can carry; None when there is none. JSON escapes pair surrogates into one character, so any left
    are lone. The path is dotted (``ref``, ``tracks.0.mid``); ``""`` for the message itself."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    return path
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend(
                (f"{path}.{index}" if path else str(index), child) for index, child in enumerate(item)
            )
    return None


def ref_of(text: str) -> str | None:
    """The ``ref`` of a message that failed validation, when it is readable (to echo in the error)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = value.get("ref") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 and not _has_surrogate(ref) else None


# --- server → client -------------------------------------------------------------------------

_DOMAIN_CODES: dict[str, ErrorCode] = {
    "invalid_transition": ErrorCode.INVALID_STATE,
    "conflict": ErrorCode.INVALID_STATE,
    "invalid_input": ErrorCode.INVALID_MESSAGE,
    "hearing_error": ErrorCode.INVALID_STATE,
}


def error_code_for(exc: HearingError) -> ErrorCode:
    """The protocol code of a domain error (the one place where they are mapped)."""
    try:
        return ErrorCode(exc.code)
    except ValueError:
        return _DOMAIN_CODES.get(exc.code, ErrorCode.INVALID_STATE)


def error(
    code: ErrorCode, message: str, *, ref: str | None = None, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An ``error`` message."""
    msg: dict[str, Any] = {"type": "error", "code": code.value, "message": message}
    if ref is not None:
        msg["ref"] = ref
    if field is not None:
        msg["field"] = field
    msg.update(extra)
    return msg


def with_ref(message: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """``message`` carrying the client's ``ref`` when it gave one."""
    if ref is not None:
        message["ref"] = ref
    return message


def simple(message_type: str, /, **fields: Any) -> dict[str, Any]:
    """A server message of ``message_type`` with ``fields`` (``hearing_ended``, ``removed``, ``muted``...)."""
    return {"type": message_type, **fields}
