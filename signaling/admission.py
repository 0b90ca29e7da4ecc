"""Who may hold a signaling socket: per-address caps on open sockets and on sockets that have not joined yet.

A socket that never joins costs memory and a descriptor while proving nothing about its owner, so an
address may keep only a few of them (``ws_unjoined_per_address``), and each must join within
``ws_join_timeout_s`` (enforced by the session). Joined sockets are capped more generously
(``ws_per_address``): a courthouse or carrier-grade NAT puts several parties behind one address.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Counts:
    open: int = 0
    unjoined: int = 0


class SocketTicket:
    """One admitted socket: marks it joined, and gives its place back when it closes."""

    def __init__(self, admission: SocketAdmission, address: str) -> None:
        self._admission = admission
        self._address = address
        self._joined = False
        self._left = False

    def joined(self) -> None:
        """The socket's participant is seated: it no longer counts as unjoined."""
        if not self._joined and not self._left:
            self._joined = True
            self._admission._counts[self._address].unjoined -= 1

    def leave(self) -> None:
        """The socket closed."""
        if self._left:
            return
        self._left = True
        counts = self._admission._counts[self._address]
        counts.open -= 1
        if not self._joined:
            counts.unjoined -= 1
        if counts.open == 0:
            del self._admission._counts[self._address]


class SocketAdmission:
    """Admits signaling sockets within the per-address caps."""

    def __init__(self, per_address: int, unjoined_per_address: int) -> None:
        self._per_address = per_address
        self._unjoined_per_address = unjoined_per_address
        self._counts: dict[str, _Counts] = {}

    def enter(self, address: str) -> SocketTicket | None:
        """A ticket for a new socket from ``address``, or None when the address is at a cap."""
        counts = self._counts.get(address, _Counts())
        if counts.open >= self._per_address or counts.unjoined >= self._unjoined_per_address:
            return None
        counts.open += 1
        counts.unjoined += 1
        self._counts[address] = counts
        return SocketTicket(self, address)

    def open_sockets(self, address: str) -> int:
        """Sockets ``address`` holds now."""
        counts = self._counts.get(address)
        return counts.open if counts else 0
