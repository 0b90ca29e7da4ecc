"""Archived hearings, seals, timelines and retention as the archive API shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from archive import schemas as s
from archive.context import BASE
from archive.models import ArchiveRecord
from archive.retention import RetentionRule
from archive.sealed import SealCheck, SealedHearing
from hearing_server.store.models import Hearing, User
from recording.verify import Problem


def problems_out(problems: list[Problem] | list[dict[str, Any]]) -> list[s.ProblemOut]:
    """Problems found by a check, as the API lists them."""
    out = []
    for p in problems:
        if isinstance(p, Problem):
            out.append(s.ProblemOut(kind=p.kind.value, detail=p.detail, path=p.path, line=p.line, seq=p.seq))
        else:
            out.append(s.ProblemOut(**p))
    return out


def hearing_out(hearing: Hearing, deleted_at: datetime | None) -> s.ArchiveHearingOut:
    """An archived hearing as listed."""
    return s.ArchiveHearingOut(
        id=hearing.id,
        case_number=hearing.case_number,
        title=hearing.title,
        court=hearing.court,
        courtroom=hearing.courtroom,
        scheduled_start=hearing.scheduled_start,
        duration_minutes=hearing.duration_minutes,
        presiding_judge=hearing.presiding_judge,
        status=hearing.status,
        started_at=hearing.started_at,
        ended_at=hearing.ended_at,
        sealed_at=hearing.sealed_at,
        legal_hold=hearing.legal_hold,
        deleted_at=deleted_at,
        parties=[
            s.ArchivePartyOut(id=p.id, role=p.role, display_name=p.display_name) for p in hearing.parties
        ],
    )


def retention_out(hearing: Hearing, record: ArchiveRecord, rule: RetentionRule) -> s.RetentionStatusOut:
    """The hearing's retention, hold and deletion."""
    expires = hearing.sealed_at + timedelta(days=rule.days) if hearing.sealed_at else None
    return s.RetentionStatusOut(
        days=rule.days,
        source=rule.source,  # type: ignore[arg-type]
        expires_at=expires,
        legal_hold=hearing.legal_hold,
        hold_reason=record.hold_reason,
        hold_changed_by=record.hold_changed_by,
        hold_changed_at=record.hold_changed_at,
        deleted_at=record.deleted_at,
        deletion_rule=record.deletion_rule,
        deletion_record=record.deletion_record,
    )


def file_url(hearing_id: str, file_id: str) -> str:
    """Where a file of a hearing is streamed from."""
    return f"{BASE}/hearings/{hearing_id}/files/{file_id}"


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


PARTY_ACTOR = "party:"
STAFF_ACTOR = "user:"


def staff_actor_ids(entries: list[dict[str, Any]]) -> set[str]:
    """The user ids of the staff members who acted in ``entries``."""
    actors = (entry.get("actor") for entry in entries)
    return {a.removeprefix(STAFF_ACTOR) for a in actors if isinstance(a, str) and a.startswith(STAFF_ACTOR)}


def actors_out(hearing: Hearing, users: list[User], entries: list[dict[str, Any]]) -> dict[str, s.ActorOut]:
    """Names for the actors of ``entries``: parties by their name and role in the hearing, staff by name."""
    known: dict[str, s.ActorOut] = {
        f"{PARTY_ACTOR}{p.id}": s.ActorOut(kind="party", name=p.display_name, role=p.role)
        for p in hearing.parties
    }
    known.update(
        {
            f"{STAFF_ACTOR}{u.id}": s.ActorOut(kind="staff", name=u.display_name or u.username, role=u.role)
            for u in users
        }
    )
    used = {entry.get("actor") for entry in entries}
    return {actor: who for actor, who in known.items() if actor in used}


def timeline_out(
    hearing: Hearing,
    sealed: SealedHearing,
    entries: list[dict[str, Any]],
    source: str,
    users: list[User] | None = None,
) -> s.TimelineOut:
    """The confirmation log placed on the recording timeline (offsets from its zero), with its actors."""
    names = {p.id: p.display_name for p in hearing.parties}
    zero, zero_source = sealed.epoch(), "recording"
    if zero is None and hearing.started_at is not None:
        zero, zero_source = hearing.started_at, "hearing_start"
    if zero is None and entries:
        zero, zero_source = _parse_time(entries[0].get("time")), "first_entry"
    if zero is None:
        zero_source = "none"
    out = []
    for entry in entries:
        moment = _parse_time(entry.get("time"))
        if moment is None:
            continue
        party_id = entry.get("party_id") if isinstance(entry.get("party_id"), str) else None
        details = entry.get("details")
        out.append(
            s.TimelineEntryOut(
                seq=int(entry["seq"]),
                time=moment,
                offset_s=round((moment - zero).total_seconds(), 3) if zero is not None else None,
                event=str(entry.get("event", "")),
                actor=entry.get("actor") if isinstance(entry.get("actor"), str) else None,
                party_id=party_id,
                party_name=names.get(party_id) if party_id else None,
                details=details if isinstance(details, dict) else {},
            )
        )
    return s.TimelineOut(
        zero=zero,
        zero_source=zero_source,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        entries=out,
        actors=actors_out(hearing, users or [], entries),
    )


def full_check_out(record: ArchiveRecord, current_fingerprint: str | None) -> s.FullCheckOut | None:
    """The last full verification, and whether the files are unchanged since."""
    data = record.verification
    if record.verified_at is None or not isinstance(data, dict):
        return None
    return s.FullCheckOut(
        checked_at=record.verified_at,
        valid=bool(record.verified_valid),
        current=current_fingerprint is not None and data.get("fingerprint") == current_fingerprint,
        files_checked=int(data.get("files_checked", 0)),
        log_entries=data.get("log_entries"),
        signer_subject=data.get("signer_subject"),
        signer_trusted=data.get("signer_trusted"),
        problems=problems_out(data.get("problems", [])),
    )


def seal_out(check: SealCheck, full: s.FullCheckOut | None, deleted: bool) -> s.SealStatusOut:
    """The seal status shown with a hearing."""
    return s.SealStatusOut(
        state="deleted" if deleted else check.state,  # type: ignore[arg-type]
        signature_valid=check.signature_valid,
        signer_subject=check.signer_subject,
        signer_trusted=check.signer_trusted,
        sealed_at=check.sealed_at,
        problems=problems_out(check.problems),
        full_check=full,
    )
