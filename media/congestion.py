"""Per-subscriber congestion control: a smoothed estimate of the server → subscriber path and the
video it can carry (all, the priority participant's only, none), with hysteresis so it does not flap.

Pure: times are passed in (``time.monotonic()`` seconds), nothing here sends or schedules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

LOSS_PERIOD_S = 0.25  # loss is summed over reports this long (browsers report as often as every ~0.1 s)
LOSS_MIN_EXPECTED = 10  # ... and at least this many packets, then smoothed
LOSS_ALPHA = 0.5  # EWMA weight of each period's loss
RTT_ALPHA = 0.3
STALE_REPORT_S = 2.0  # a report block this long after its SSRC's last one speaks of the past (see report)
SENT_PERIOD_S = 0.5  # the bitrate sent is measured over periods this long
CONGESTED_LOSS = 0.10  # smoothed loss above this: the link cannot carry what it is sent
SEVERE_LOSS = 0.25  # one period's loss above this: congested at once (a queue overflowing, not noise)
CONGESTED_RTT_S = 0.6  # smoothed round trip above this: a standing queue on the path
CLEAR_LOSS = 0.02  # both below these for RECOVER_HOLD_S: the link has recovered
CLEAR_RTT_S = 0.35
HOLD_LOSS = 0.01  # ... and over that whole hold at most this share of the packets lost
HOLD_MIN_PACKETS = 180  # ... of at least this many (~3 s of padding; 5 % loss leaves no such gap)
ESCALATE_AFTER_S = 1.0  # a level is held at least this long before pausing more video
RECOVER_HOLD_S = 2.5  # the link must look clear this long before video resumes
MIN_PAUSE_S = 5.0  # paused video stays paused at least this long
FLAP_WINDOW_S = 15.0  # congested again this soon after a resume: the next resume waits twice as long
MAX_RECOVER_HOLD_S = 20.0


class VideoLevel(IntEnum):
    """How much video a subscriber gets: everything, the priority participant's only, or none."""

    ALL = 0
    PRIORITY_ONLY = 1
    NONE = 2


@dataclass(frozen=True)
class LinkSnapshot:
    """The smoothed estimate of one subscriber's downlink at one moment."""

    loss: float | None  # 0..1, smoothed
    round_trip_s: float | None
    remb_bps: int | None
    sent_bps: float
    recent_loss: float | None = None  # the last period's, unsmoothed
    expected: int = 0  # packets the reports have accounted for so far
    lost: int = 0  # ... and of them lost


class LinkEstimator:
    """EWMA of the subscriber's reported loss and round trip, its REMB and the bitrate sent to it."""

    def __init__(self) -> None:
        self.loss: float | None = None
        self.recent_loss: float | None = None
        self.round_trip_s: float | None = None
        self.remb_bps: int | None = None
        self.sent_bps = 0.0
        self._sent_at: float | None = None
        self._sent_octets = 0
        # SSRC → (extended highest sequence, cumulative lost, when reported)
        self._streams: dict[int, tuple[int, int, float]] = {}
        self._period_start: float | None = None
        self._expected = 0
        self._lost = 0
        self._expected_total = 0
        self._lost_total = 0

    def report(
        self, ssrc: int, highest_sequence: int, cumulative_lost: int, round_trip_s: float | None, now: float
    ) -> None:
        """One receiver report block (its counters are cumulative) and the round trip it gave, if any.

        Loss is counted only from blocks that follow their SSRC's previous one closely: browsers report
        audio every ~5 s, and such a block sums loss from seconds ago into the present (after a weak link
        recovers it would reset the resume's hold with losses from before the recovery)."""
        previous = self._streams.get(ssrc)
        self._streams[ssrc] = (highest_sequence, cumulative_lost, now)
        if previous is not None and now - previous[2] <= STALE_REPORT_S:
            expected = highest_sequence - previous[0]
            if 0 < expected < 0x8000:  # not a restarted or reordered report
                lost = min(expected, max(0, cumulative_lost - previous[1]))
                self._expected += expected
                self._lost += lost
                self._expected_total += expected
                self._lost_total += lost
        if self._period_start is None:
            self._period_start = now
        elif now - self._period_start >= LOSS_PERIOD_S and self._expected >= LOSS_MIN_EXPECTED:
            sample = self._lost / self._expected
            # too few packets make a single period's loss noise: only a full one counts on its own
            self.recent_loss = sample if self._expected >= 2 * LOSS_MIN_EXPECTED else None
            self.loss = sample if self.loss is None else _ewma(self.loss, sample, LOSS_ALPHA)
            self._period_start, self._expected, self._lost = now, 0, 0
        if round_trip_s is not None:
            rtt = self.round_trip_s
            self.round_trip_s = round_trip_s if rtt is None else _ewma(rtt, round_trip_s, RTT_ALPHA)

    def remb(self, bitrate_bps: int) -> None:
        """The subscriber's receive-side bandwidth estimate."""
        self.remb_bps = bitrate_bps

    def sent(self, total_octets: int, now: float) -> None:
        """The running total of payload octets sent to the subscriber, sampled at ``now``."""
        if self._sent_at is None:
            self._sent_at, self._sent_octets = now, total_octets
        elif now - self._sent_at >= SENT_PERIOD_S:  # reports come many times a second: rate over a period
            rate = max(0, total_octets - self._sent_octets) * 8 / (now - self._sent_at)
            self.sent_bps = _ewma(self.sent_bps, rate, 0.5)
            self._sent_at, self._sent_octets = now, total_octets

    def snapshot(self) -> LinkSnapshot:
        """The current estimate."""
        return LinkSnapshot(
            self.loss,
            self.round_trip_s,
            self.remb_bps,
            self.sent_bps,
            self.recent_loss,
            self._expected_total,
            self._lost_total,
        )


def is_congested(link: LinkSnapshot) -> bool:
    """Whether the link is losing or queueing what it is sent."""
    return (
        (link.loss is not None and link.loss > CONGESTED_LOSS)
        or (link.recent_loss is not None and link.recent_loss > SEVERE_LOSS)
        or (link.round_trip_s is not None and link.round_trip_s > CONGESTED_RTT_S)
    )


def is_clear(link: LinkSnapshot) -> bool:
    """Whether the link has room again (between congested and clear the level holds)."""
    return (
        link.loss is not None
        and link.loss < CLEAR_LOSS
        and (link.round_trip_s is None or link.round_trip_s < CLEAR_RTT_S)
    )


class VideoPolicy:
    """Steps the video level up on congestion and back down on a clear link, with hysteresis.

    A link is clear for a resume when its smoothed loss and round trip stayed low for the whole hold
    *and* the packets counted over that hold show (almost) no loss: a smoothed figure over the few
    packets of a paused link (audio, padding) dips below the threshold by chance on a lossy one."""

    def __init__(self) -> None:
        self.level = VideoLevel.ALL
        self.recover_hold_s = RECOVER_HOLD_S
        self._changed_at = float("-inf")
        self._paused_at = float("-inf")
        self._resumed_at = float("-inf")
        self._clear_since: float | None = None
        self._clear_from = (0, 0)  # the reports' (expected, lost) when the link turned clear

    def update(self, link: LinkSnapshot, now: float, *, others_sending: bool = True) -> VideoLevel:
        """The level for the link as it is at ``now`` (call on each new report); without video from
        others than the priority participant, the priority-only level is skipped (it would pause nothing)."""
        step = 1 if others_sending else 2
        if is_congested(link):
            self._clear_since = None
            if self.level < VideoLevel.NONE and now - self._changed_at >= ESCALATE_AFTER_S:
                if self.level == VideoLevel.ALL:
                    self._paused_at = now
                    flapped = now - self._resumed_at < FLAP_WINDOW_S
                    self.recover_hold_s = (
                        min(MAX_RECOVER_HOLD_S, 2 * self.recover_hold_s) if flapped else RECOVER_HOLD_S
                    )
                self._set(VideoLevel(min(VideoLevel.NONE, self.level + step)), now)
        elif is_clear(link):
            if self._clear_since is None:
                self._clear_since = now
                self._clear_from = (link.expected, link.lost)
            expected, lost = link.expected - self._clear_from[0], link.lost - self._clear_from[1]
            if (
                self.level > VideoLevel.ALL
                and now - self._clear_since >= self.recover_hold_s
                and now - self._paused_at >= MIN_PAUSE_S
                and now - self._changed_at >= self.recover_hold_s
                and expected >= HOLD_MIN_PACKETS
                and lost <= HOLD_LOSS * expected
            ):
                self._set(VideoLevel(max(VideoLevel.ALL, self.level - step)), now)
                if self.level == VideoLevel.ALL:
                    self._resumed_at = now
        else:
            self._clear_since = None
        return self.level

    def _set(self, level: VideoLevel, now: float) -> None:
        self.level = level
        self._changed_at = now


def _ewma(previous: float, value: float, alpha: float) -> float:
    return (1 - alpha) * previous + alpha * value
