"""Per-hearing staff: who may run a hearing's courtroom console and sign its acts."""

from __future__ import annotations

from dataclasses import dataclass

from hearing_server.domain.party import StaffRole

READ_ONLY_NOTE = "read-only: you are not this hearing's secretary or judge"
NOT_STAFF_NOTE = "only this hearing's presiding judge or secretary (or an admin) may change it"


@dataclass(frozen=True)
class HearingStaff:
    """The staff accounts assigned to one hearing (None: not assigned)."""

    presiding_judge_id: str | None
    secretary_id: str | None

    @property
    def assigned(self) -> bool:
        """Whether anyone is assigned; hearings without assigned staff keep the role-only rules."""
        return self.presiding_judge_id is not None or self.secretary_id is not None

    def may_operate(self, user_id: str, role: StaffRole | str) -> bool:
        """Whether this account may run the courtroom console (the ``courtroom`` seat)."""
        role = StaffRole(role)
        if role is StaffRole.ADMIN:
            return True
        if role not in (StaffRole.OPERATOR, StaffRole.JUDGE):
            return False
        if not self.assigned:
            return True
        return user_id in (self.presiding_judge_id, self.secretary_id)

    def may_change(self, user_id: str, role: StaffRole | str) -> bool:
        """Whether this account may change the hearing (schedule, parties, links, seal): its assigned staff
        or an admin; anyone the endpoint's role rule lets in while nobody is assigned."""
        if StaffRole(role) is StaffRole.ADMIN or not self.assigned:
            return True
        return user_id in (self.presiding_judge_id, self.secretary_id)

    def may_sign(self, user_id: str, role: StaffRole | str) -> bool:
        """Whether this account may sign the hearing's acts: its presiding judge, or an admin."""
        role = StaffRole(role)
        if role is StaffRole.ADMIN:
            return True
        if role is not StaffRole.JUDGE:
            return False
        return self.presiding_judge_id is None or user_id == self.presiding_judge_id
