"""The role policy: which staff roles may call what.

``admin`` manages accounts and may do everything else; ``operator`` manages hearings, parties and
invitations; ``judge`` reads hearings and parties; ``archivist`` works only in the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

from hearing_server.domain.party import StaffRole


@dataclass(frozen=True)
class Access:
    """Who may call an endpoint: anyone (``public``) or a logged-in member of ``roles``."""

    roles: frozenset[StaffRole]
    public: bool = False

    def allows(self, role: StaffRole | str | None) -> bool:
        """Whether a caller with ``role`` (``None``: not logged in) may call."""
        if self.public:
            return True
        return role is not None and StaffRole(role) in self.roles

    def describe(self) -> str:
        """A short human description for documentation."""
        if self.public:
            return "public"
        return ", ".join(sorted(r.value for r in self.roles))


PUBLIC = Access(frozenset(), public=True)
ANY_STAFF = Access(frozenset(StaffRole))
ADMINS = Access(frozenset({StaffRole.ADMIN}))
HEARING_MANAGERS = Access(frozenset({StaffRole.ADMIN, StaffRole.OPERATOR}))
HEARING_READERS = Access(frozenset({StaffRole.ADMIN, StaffRole.OPERATOR, StaffRole.JUDGE}))
ACT_SIGNERS = Access(frozenset({StaffRole.ADMIN, StaffRole.JUDGE}))
ARCHIVE_READERS = Access(frozenset({StaffRole.ADMIN, StaffRole.ARCHIVIST}))
