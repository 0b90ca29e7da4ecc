"""Parties to a hearing: their roles and their live state."""

from __future__ import annotations

from enum import StrEnum


class PartyRole(StrEnum):
    """The role a person has in one hearing; ``courtroom`` is the courtroom's own endpoint."""

    JUDGE = "judge"
    SECRETARY = "secretary"
    PROSECUTOR = "prosecutor"
    LAWYER = "lawyer"
    PLAINTIFF = "plaintiff"
    DEFENDANT = "defendant"
    VICTIM = "victim"
    WITNESS = "witness"
    EXPERT = "expert"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"
    COURTROOM = "courtroom"


class PartyState(StrEnum):
    """Where a party is on the way into and out of the hearing."""

    INVITED = "invited"
    LINK_OPENED = "link_opened"
    CONFIRMED = "confirmed"  # accepted the recording notice
    WAITING = "waiting"
    IN_HEARING = "in_hearing"
    DISCONNECTED = "disconnected"
    LEFT = "left"
    DENIED = "denied"
    REMOVED = "removed"


class StaffRole(StrEnum):
    """What a staff account may do."""

    ADMIN = "admin"
    OPERATOR = "operator"
    JUDGE = "judge"
    ARCHIVIST = "archivist"
