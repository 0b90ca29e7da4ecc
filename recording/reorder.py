"""Putting one track's RTP packets back in sending order before they are depacketized.

Packets arrive out of order, twice (retransmissions) or not at all.  In-order packets pass
at once; a packet after a hole waits up to ``hold_s`` for the missing ones, after which the
hole is declared lost (a :class:`Loss`) and the packets behind it go on.  The first packets of
a stream wait the hold too, so one sent earlier but overtaken is not taken for a late copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.contract import RtpPacket

_SEQ_MOD = 1 << 16
_SEQ_HALF = 1 << 15
# How far behind the released sequence a packet may be and still be a late copy of one seen;
# a run of packets further behind means the sender restarted its numbering.
_STRAY_DISTANCE = 1000
_STRAYS_BEFORE_RESET = 8


@dataclass(frozen=True, slots=True)
class Loss:
    """``count`` consecutive packets that never arrived in time (a hole in the sequence)."""

    count: int


@dataclass
class ReorderStats:
    """What the reorder buffer saw of one track."""

    received: int = 0
    duplicates: int = 0  # already released, declared lost or already waiting
    lost: int = 0  # sequence numbers given up on
    resets: int = 0  # the sender's sequence jumped: numbering restarted


class ReorderBuffer:
    """Releases one track's packets in sequence order, holding those behind a hole for a while.

    Time is the packets' arrival time while packets flow; :meth:`expire` lets an idle track's
    holes go when no later packet arrives to move time on.
    """

    def __init__(self, hold_s: float = 0.4, max_packets: int = 2000) -> None:
        self.hold_s = hold_s
        self.max_packets = max_packets
        self.stats = ReorderStats()
        self._highest: int | None = None  # highest extended sequence number seen
        self._next: int = 0  # next extended sequence number to release
        self._waiting: dict[int, RtpPacket] = {}
        self._hole_since = 0.0  # arrival time from which the oldest waiting packet has waited
        self._starting = False  # holding the stream's first packets for any sent before them
        self._strays = 0

    @property
    def waiting(self) -> int:
        """Packets held behind a hole."""
        return len(self._waiting)

    def push(self, packet: RtpPacket) -> list[RtpPacket | Loss]:
        """Take one arrived packet; return what can now go on, in order."""
        self.stats.received += 1
        highest = self._highest
        if highest is None:
            self._highest = self._next = packet.sequence_number
            self._waiting[packet.sequence_number] = packet
            self._hole_since = packet.arrival
            self._starting = True
            return []
        seq = highest + ((packet.sequence_number - highest + _SEQ_HALF) % _SEQ_MOD) - _SEQ_HALF
        if seq == self._next and not self._waiting:  # the common case: in order, nothing held
            self._strays = 0
            self._highest = seq
            self._next = seq + 1
            return [packet]
        if seq in self._waiting or (
            seq < self._next and not (self._starting and seq >= highest - _STRAY_DISTANCE)
        ):
            if seq < self._next - _STRAY_DISTANCE:
                self._strays += 1
                if self._strays >= _STRAYS_BEFORE_RESET:
                    return self._restart(packet)
            self.stats.duplicates += 1
            return []
        self._strays = 0
        if seq > highest:
            self._highest = seq
        if seq < self._next:
            self._next = seq  # starting: sent before the first to arrive
        if not self._waiting:
            self._hole_since = packet.arrival
        self._waiting[seq] = packet
        if self._starting:
            if packet.arrival - self._hole_since < self.hold_s:
                return []
            self._starting = False
        out = self._release()
        while self._waiting and (
            packet.arrival - self._hole_since >= self.hold_s or len(self._waiting) > self.max_packets
        ):
            out.extend(self._skip_hole())
        return out

    def expire(self, now: float) -> list[RtpPacket | Loss]:
        """Give up on holes older than the hold time at arrival-clock time ``now``."""
        out: list[RtpPacket | Loss] = []
        if self._starting and now - self._hole_since >= self.hold_s:
            self._starting = False
            out.extend(self._release())
        while self._waiting and not self._starting and now - self._hole_since >= self.hold_s:
            out.extend(self._skip_hole())
        return out

    def drain(self) -> list[RtpPacket | Loss]:
        """Release everything held (the track ends): every remaining hole is lost."""
        self._starting = False
        out = self._release()
        while self._waiting:
            out.extend(self._skip_hole())
        return out

    def reset(self) -> None:
        """Start afresh with the next packet (after a recess nothing before it is waited for)."""
        self._highest = None
        self._waiting.clear()
        self._starting = False
        self._strays = 0

    def _release(self) -> list[RtpPacket | Loss]:
        out: list[RtpPacket | Loss] = []
        waiting = self._waiting
        while self._next in waiting:
            out.append(waiting.pop(self._next))
            self._next += 1
        if out and waiting:
            # a hole was filled and another remains: it has waited since its first packet arrived
            self._hole_since = min(p.arrival for p in waiting.values())
        return out

    def _skip_hole(self) -> list[RtpPacket | Loss]:
        first = min(self._waiting)
        missing = first - self._next
        self.stats.lost += missing
        self._next = first
        return [Loss(missing), *self._release()]

    def _restart(self, packet: RtpPacket) -> list[RtpPacket | Loss]:
        out = self.drain()
        self.stats.resets += 1
        self.reset()
        out.append(Loss(0))  # whatever comes next does not continue what came before
        out.extend(self.push(packet))
        self.stats.received -= 1
        return out
