"""Where a hearing is hosted: the live room asks before a hearing goes live here and says when it left.

A single server hosts everything (:class:`SingleNode`); a cluster node implements :class:`Placement` with
leases in the database (``hearing_server.cluster``).
"""

from __future__ import annotations

from typing import Protocol


class Placement(Protocol):
    """Claims and releases the right to host a live hearing on this node."""

    async def claim(self, hearing_id: str) -> None:
        """Host ``hearing_id`` here, or raise a ProtocolError (cluster full, hosted elsewhere)."""

    async def release(self, hearing_id: str) -> None:
        """This node no longer hosts ``hearing_id``."""


class SingleNode:
    """The placement of a server without a cluster: every hearing is hosted here."""

    async def claim(self, hearing_id: str) -> None:
        """Always granted."""

    async def release(self, hearing_id: str) -> None:
        """Nothing to give back."""
