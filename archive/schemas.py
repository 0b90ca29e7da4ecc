"""Request and response bodies of the archive API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from hearing_server.api.schemas import Body, Query, Text200, Text500

# Dates far outside any court's archive are refused instead of overflowing a time-zone conversion.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2199, 12, 31)
MAX_OFFSET = 10_000


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _archive_day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"a day between {FIRST_DAY} and {LAST_DAY}")
    return value


SearchText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
CaseText = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
Day = Annotated[date, AfterValidator(_archive_day)]
SortKey = Literal["scheduled_start", "-scheduled_start", "case_number", "-case_number"]


class ArchiveSearchQuery(Query):
    """Filters, sorting and paging of the archive search; dates are days in the court's time zone."""

    case_number: CaseText | None = Field(None, description="Exact case number.")
    case_number_prefix: CaseText | None = Field(
        None, description="Case numbers starting with this (exact case)."
    )
    date_from: Day | None = Field(
        None, description="First day of the scheduled start (inclusive), YYYY-MM-DD."
    )
    date_to: Day | None = Field(None, description="Last day of the scheduled start (inclusive), YYYY-MM-DD.")
    court: SearchText | None = Field(None, description="Exact court name.")
    courtroom: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_printable)] | None = Field(
        None, description="Exact courtroom."
    )
    judge: SearchText | None = Field(
        None, description="Every word must begin a word of the presiding judge's name (any letter case)."
    )
    party: SearchText | None = Field(
        None, description="Every word must begin a word of one party's name (any letter case)."
    )
    status: Literal["ended", "sealed"] | None = None
    on_hold: bool | None = Field(None, description="Only hearings on (true) or off (false) legal hold.")
    include_deleted: bool = Field(False, description="Also list hearings whose files were deleted.")
    sort: SortKey = Field("-scheduled_start", description="Sort key; a leading '-' sorts descending.")
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    cursor: Annotated[str, Field(min_length=1, max_length=400)] | None = Field(
        None, description="next_cursor of the previous page (keyset paging; use instead of offset)."
    )


class ArchivePartyOut(BaseModel):
    """A party of an archived hearing."""

    id: str
    role: str
    display_name: str


class ArchiveHearingOut(BaseModel):
    """An archived hearing as listed."""

    id: str
    case_number: str
    title: str
    court: str
    courtroom: str
    scheduled_start: datetime
    duration_minutes: int
    presiding_judge: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    sealed_at: datetime | None
    legal_hold: bool
    deleted_at: datetime | None
    parties: list[ArchivePartyOut]


class ArchiveSearchPage(BaseModel):
    """One page of search results and ``next_cursor``, which continues after it."""

    items: list[ArchiveHearingOut]
    total: int = Field(description="Matches, counted up to 10,000.")
    total_exact: bool = Field(description="False when more than ``total`` hearings match.")
    limit: int
    offset: int
    next_cursor: str | None


class ArchiveFileOut(BaseModel):
    """One file of a sealed hearing, addressed by ``id`` (never by path)."""

    id: str
    name: str
    kind: str
    sealed: bool = Field(description="Listed in the signed manifest (evidence); false for derived copies.")
    content_type: str
    url: str
    size: int | None
    sha256: str | None = None
    codec: str | None = None
    participant_id: str | None = None
    track_id: str | None = None
    duration_s: float | None = None
    first_timestamp_s: float | None = Field(None, description="Start on the hearing timeline, seconds.")
    width: int | None = None
    height: int | None = None


class ProblemOut(BaseModel):
    """One thing found wrong with a sealed hearing."""

    kind: str
    detail: str
    path: str | None = None
    line: int | None = None
    seq: int | None = None


class FullCheckOut(BaseModel):
    """The last full verification (every file hashed), and whether the files are unchanged since."""

    checked_at: datetime
    valid: bool
    current: bool = Field(description="No file's size or modification time changed since the check.")
    files_checked: int
    log_entries: int | None
    signer_subject: str | None
    signer_trusted: bool | None
    problems: list[ProblemOut]


class SealStatusOut(BaseModel):
    """The seal as checked now: signature, every file's presence and size, the log's hash."""

    state: Literal["valid", "invalid", "unsealed", "deleted"]
    signature_valid: bool
    signer_subject: str | None
    signer_trusted: bool | None
    sealed_at: str | None
    problems: list[ProblemOut]
    full_check: FullCheckOut | None


class PlaybackOut(BaseModel):
    """The browser playback copy: render progress and, when done, its file."""

    state: str
    percent: float | None = None
    error: str | None = None
    file_id: str | None = None
    url: str | None = None


class TimelineEntryOut(BaseModel):
    """One confirmation-log entry placed on the recording's timeline."""

    seq: int
    time: datetime
    offset_s: float | None = Field(description="Seconds after the timeline zero; seek the media here.")
    event: str
    actor: str | None
    party_id: str | None
    party_name: str | None
    details: dict[str, Any]


class ActorOut(BaseModel):
    """Who an ``actor`` of the log is: a party of the hearing (name and role) or a staff member."""

    kind: Literal["party", "staff"]
    name: str
    role: str = Field(description="The party's role in the hearing, or the staff member's role.")


class TimelineOut(BaseModel):
    """The confirmation log with times relative to the recording's start."""

    zero: datetime | None
    zero_source: Literal["recording", "hearing_start", "first_entry", "none"]
    source: Literal["log_file", "database"]
    entries: list[TimelineEntryOut]
    actors: dict[str, ActorOut] = Field(
        default_factory=dict,
        description="The entries' actors (``party:<id>``, ``user:<id>``) by name; ``system`` and actors "
        "no longer known are absent.",
    )


class RetentionStatusOut(BaseModel):
    """How long the hearing is kept, whether it is on legal hold, and whether it was deleted."""

    days: int
    source: Literal["court", "default"]
    expires_at: datetime | None
    legal_hold: bool
    hold_reason: str
    hold_changed_by: str | None
    hold_changed_at: datetime | None
    deleted_at: datetime | None
    deletion_rule: str
    deletion_record: str | None


class ArchiveActOut(BaseModel):
    """A court act of the hearing: who signed it, and which seal covers its file."""

    id: str
    title: str
    signer_subject: str
    signed_at: datetime
    signed_sha256: str
    file_id: str | None = Field(description="The act's file among the hearing's files; null when not stored.")
    addendum: int | None = Field(description="The addendum that seals it; null when the hearing's seal does.")


class ArchiveAddendumOut(BaseModel):
    """An addendum seal: files added after the hearing was sealed, signed and chained to the seal."""

    number: int
    sealed_at: str | None
    signer: str | None
    files: int
    manifest_file_id: str | None


class ArchiveHearingDetail(ArchiveHearingOut):
    """An archived hearing with its files, acts, seal and addenda, playback copy, timeline and retention."""

    files: list[ArchiveFileOut]
    acts: list[ArchiveActOut] = Field(default_factory=list)
    addenda: list[ArchiveAddendumOut] = Field(default_factory=list)
    seal: SealStatusOut
    playback: PlaybackOut
    timeline: TimelineOut
    retention: RetentionStatusOut


class HoldIn(Body):
    """Put a hearing on legal hold or release it; the reason is recorded."""

    hold: bool
    reason: Text500


class VerificationOut(BaseModel):
    """A full verification just made: every file hashed against the signed manifest."""

    hearing_id: str
    checked_at: datetime
    valid: bool
    signature_valid: bool
    signer_subject: str | None
    signer_trusted: bool | None
    files_checked: int
    log_entries: int | None
    problems: list[ProblemOut]


class CourtRetentionOut(BaseModel):
    """One court's retention period."""

    court: str
    days: int
    updated_at: datetime
    updated_by: str


class RetentionListOut(BaseModel):
    """Retention periods: the configured default and each court's own."""

    default_days: int
    courts: list[CourtRetentionOut]


class RetentionSetIn(Body):
    """Set a court's retention period; ``days: null`` returns it to the default."""

    court: Text200
    days: Annotated[int, Field(ge=1, le=100 * 366)] | None


class PurgeIn(Body):
    """Run the retention purge now; ``dry_run`` only lists what would be deleted."""

    dry_run: bool = True


class PurgeItemOut(BaseModel):
    """A hearing whose retention expired."""

    hearing_id: str
    case_number: str
    court: str
    sealed_at: datetime
    expired_at: datetime
    rule: str


class PurgeFailureOut(BaseModel):
    """A hearing the purge could not delete, and why."""

    hearing_id: str
    error: str


class PurgeOut(BaseModel):
    """What the purge found and did."""

    dry_run: bool
    candidates: list[PurgeItemOut]
    deleted: list[str]
    failed: list[PurgeFailureOut]


class AuditQuery(Query):
    """Paging (newest first) and filters of the access audit."""

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before_seq: Annotated[int, Field(ge=1, le=2**62)] | None = Field(
        None, description="Entries older than this."
    )
    hearing_id: Annotated[str, Field(min_length=36, max_length=36)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")] | None = None
    actor: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)] | None = None


class AuditEntryOut(BaseModel):
    """One access to the archive."""

    seq: int
    time: datetime
    actor: str
    role: str
    action: str
    hearing_id: str | None
    target: str
    status: int
    result: str
    ip: str
    user_agent: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """Newest entries first; pass ``next_before_seq`` as ``before_seq`` for the next page."""

    items: list[AuditEntryOut]
    next_before_seq: int | None


class ChainStatusOut(BaseModel):
    """Whether the access-audit file's hash chain is intact."""

    valid: bool
    entries: int
    last_hash: str
    problem: str | None
    line: int | None
