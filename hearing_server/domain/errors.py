"""The domain's exception hierarchy; the API and signaling map each to an HTTP status or protocol code."""

from __future__ import annotations


class HearingError(Exception):
    """Something a user asked for cannot be done; ``code`` is stable, ``message`` is for people."""

    code = "hearing_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(HearingError):
    """The request is malformed or its values are impossible."""

    code = "invalid_input"
    status = 400


class NotAuthenticated(HearingError):
    """No valid staff session or invitation was presented."""

    code = "not_authenticated"
    status = 401


class Forbidden(HearingError):
    """The caller's role does not allow this."""

    code = "forbidden"
    status = 403


class NotFound(HearingError):
    """No such hearing, party or resource (or not visible to the caller)."""

    code = "not_found"
    status = 404


class Conflict(HearingError):
    """The request contradicts the current state (duplicate, wrong status)."""

    code = "conflict"
    status = 409


class InvitationUnusable(HearingError):
    """The invitation link is expired, revoked or unknown."""

    code = "invitation_invalid"
    status = 410


class TooLarge(HearingError):
    """The request body or message is larger than allowed."""

    code = "too_large"
    status = 413


class RateLimited(HearingError):
    """Too many attempts; try again later."""

    code = "rate_limited"
    status = 429


class EventLogUnavailable(HearingError):
    """The hearing's confirmation log cannot be written, so the change it would record is not made."""

    code = "event_log_unavailable"
    status = 503


class StoreUnavailable(Exception):
    """The database could not be reached; a change is in the confirmation log but not stored yet."""
