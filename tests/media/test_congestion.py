"""The per-subscriber link estimate and video policy (pure: times passed in)."""

from __future__ import annotations

import random

from media.congestion import (
    HOLD_MIN_PACKETS,
    MIN_PAUSE_S,
    RECOVER_HOLD_S,
    LinkEstimator,
    LinkSnapshot,
    VideoLevel,
    VideoPolicy,
    is_clear,
    is_congested,
)


class Counted:
    """Snapshots whose reports account for ``packets`` more packets each, ``loss`` of them lost."""

    def __init__(self, packets: int = 60) -> None:
        self.packets, self.expected, self.lost = packets, 0, 0

    def __call__(self, loss: float, rtt: float = 0.05) -> LinkSnapshot:
        self.expected += self.packets
        self.lost += round(loss * self.packets)
        return LinkSnapshot(loss, rtt, None, 500_000.0, None, self.expected, self.lost)


def link(loss: float, rtt: float = 0.05) -> LinkSnapshot:
    return LinkSnapshot(loss, rtt, None, 500_000.0)


class Reports:
    """A subscriber's receiver reports for one SSRC: cumulative counters, as on the wire."""

    def __init__(self, estimator: LinkEstimator, ssrc: int = 1) -> None:
        self.estimator, self.ssrc, self.highest, self.lost = estimator, ssrc, 1000, 0

    def send(self, now: float, received: int, lost: int, rtt: float | None = 0.05) -> None:
        self.highest += received + lost
        self.lost += lost
        self.estimator.report(self.ssrc, self.highest, self.lost, rtt, now)


def test_estimator_sums_loss_over_periods_and_smooths_it() -> None:
    estimator = LinkEstimator()
    reports = Reports(estimator)
    reports.send(0.0, 0, 0, 0.1)
    for step in range(1, 4):  # 0.1 s reports: only every 0.25 s of them makes a sample
        reports.send(step / 10, 8, 2 if step == 3 else 0, None)
    assert estimator.loss is not None and abs(estimator.loss - 2 / 26) < 1e-9
    for step in range(6, 11):
        reports.send(step / 10, 5, 5, None)  # half lost
    assert 0.15 < estimator.loss < 0.5
    reports.send(1.1, 5, 0, 0.5)
    assert estimator.round_trip_s is not None and abs(estimator.round_trip_s - (0.7 * 0.1 + 0.3 * 0.5)) < 1e-9
    estimator.remb(250_000)
    assert estimator.snapshot().remb_bps == 250_000


def test_many_reports_with_little_in_them_do_not_wash_loss_out() -> None:
    estimator = LinkEstimator()
    reports = Reports(estimator)
    reports.send(0.0, 0, 0)
    # 5 % loss, reported every 0.05 s: most reports see no loss at all
    for step in range(1, 201):
        reports.send(step / 20, 2 if step % 10 else 1, 0 if step % 10 else 1)
    assert estimator.loss is not None and 0.03 < estimator.loss < 0.08


def test_a_new_ssrc_or_a_restart_does_not_count_as_loss() -> None:
    estimator = LinkEstimator()
    first, second = Reports(estimator, 1), Reports(estimator, 2)
    first.send(0.0, 0, 0)
    second.highest = 50_000
    second.lost = 4000  # counters carried from long ago
    for step in range(1, 12):
        first.send(step / 10, 10, 0)
        second.send(step / 10, 10, 0)
    assert estimator.loss == 0.0


def test_estimator_measures_the_bitrate_sent() -> None:
    estimator = LinkEstimator()
    estimator.sent(0, 0.0)
    estimator.sent(62_500, 1.0)  # 500 kbit in a second
    estimator.sent(62_600, 1.1)  # too soon after: no new figure
    estimator.sent(125_000, 2.0)
    assert 350_000 < estimator.sent_bps <= 500_000


def test_a_band_between_clear_and_congested() -> None:
    assert is_congested(link(0.3)) and not is_clear(link(0.3))
    assert is_congested(link(0.0, rtt=0.9))
    assert not is_congested(link(0.05)) and not is_clear(link(0.05))  # 5 % random loss: hold
    assert is_clear(link(0.0))
    assert is_congested(LinkSnapshot(0.04, 0.05, None, 1e6, recent_loss=0.4))  # one overflowing period


def test_congestion_pauses_others_first_then_the_priority_video() -> None:
    policy = VideoPolicy()
    assert policy.update(link(0.0), 0.0) == VideoLevel.ALL
    assert policy.update(link(0.3), 1.0) == VideoLevel.PRIORITY_ONLY
    assert policy.update(link(0.3), 1.5) == VideoLevel.PRIORITY_ONLY  # held a second first
    assert policy.update(link(0.3), 2.1) == VideoLevel.NONE


def test_without_other_video_the_priority_only_level_is_skipped() -> None:
    policy = VideoPolicy()
    link = Counted()
    assert policy.update(link(0.3), 1.0, others_sending=False) == VideoLevel.NONE
    for t in range(2, 12):
        level = policy.update(link(0.0), float(t), others_sending=False)
    assert level == VideoLevel.ALL


def test_recovery_waits_for_a_clear_link_and_the_minimum_pause() -> None:
    policy = VideoPolicy()
    link = Counted()
    policy.update(link(0.3), 0.0, others_sending=False)
    assert policy.level == VideoLevel.NONE
    # clear at once, but the pause lasts at least MIN_PAUSE_S
    times = [0.5 + 0.5 * i for i in range(int(MIN_PAUSE_S * 2) + 2)]
    levels = [(t, policy.update(link(0.0), t, others_sending=False)) for t in times]
    resumed = [t for t, level in levels if level == VideoLevel.ALL]
    assert resumed and resumed[0] >= MIN_PAUSE_S


def test_random_loss_in_the_band_does_not_resume_or_flap() -> None:
    policy = VideoPolicy()
    estimator = LinkEstimator()
    reports = Reports(estimator)
    chance = random.Random(16)
    reports.send(0.0, 0, 0)
    changes, level = 0, policy.level
    # a congested second, then a minute of 5 % random loss on ~50 padding packets/s, reported every 0.1 s
    for step in range(1, 611):
        lost = 3 if step <= 10 else sum(chance.random() < 0.05 for _ in range(5))
        reports.send(step / 10, 5 - min(lost, 5), lost, 0.2)
        new = policy.update(estimator.snapshot(), step / 10, others_sending=False)
        changes += new != level
        level = new
    assert level == VideoLevel.NONE and changes == 1


def test_one_clear_report_in_a_congested_stretch_does_not_resume() -> None:
    policy = VideoPolicy()
    policy.update(link(0.3), 0.0, others_sending=False)
    for t in range(1, 20):
        loss = 0.0 if t % 3 == 0 else 0.3
        assert policy.update(link(loss), float(t), others_sending=False) == VideoLevel.NONE


def test_congestion_soon_after_a_resume_makes_the_next_resume_wait_longer() -> None:
    policy = VideoPolicy()
    link = Counted()
    policy.update(link(0.3), 0.0, others_sending=False)
    t = 0.0
    while policy.level != VideoLevel.ALL:
        t += 0.25
        policy.update(link(0.0), t, others_sending=False)
    first_pause = t
    policy.update(link(0.3), t + 1.0, others_sending=False)  # congested again at once: a flap
    assert policy.level == VideoLevel.NONE and policy.recover_hold_s == 2 * RECOVER_HOLD_S
    start, t = t + 1.0, t + 1.0
    while policy.level != VideoLevel.ALL:
        t += 0.25
        policy.update(link(0.0), t, others_sending=False)
    assert t - start >= max(MIN_PAUSE_S, 2 * RECOVER_HOLD_S) and first_pause >= MIN_PAUSE_S
    # a pause long after the last resume starts from the base hold again
    policy.update(link(0.3), t + 60.0, others_sending=False)
    assert policy.recover_hold_s == RECOVER_HOLD_S


def test_a_resume_needs_enough_packets_without_loss_over_the_hold() -> None:
    few, lossy = VideoPolicy(), VideoPolicy()
    for policy in (few, lossy):
        policy.update(link(0.3), 0.0, others_sending=False)
    thin = Counted(packets=5)  # a clear smoothed figure from 145 packets in 14.5 s: not evidence enough
    for t in range(1, 30):
        assert few.update(thin(0.0), t / 2, others_sending=False) == VideoLevel.NONE
    leaky = Counted(packets=60)  # every smoothed figure clear, but 3 % of the hold's packets lost
    for t in range(1, 30):
        snapshot = leaky(0.0)
        leaky.lost += 2
        assert lossy.update(snapshot, t / 2, others_sending=False) == VideoLevel.NONE
    clean, policy = Counted(packets=60), VideoPolicy()  # the same without the loss resumes
    policy.update(link(0.3), 0.0, others_sending=False)
    assert any(policy.update(clean(0.0), t / 2, others_sending=False) == VideoLevel.ALL for t in range(1, 30))


def padded_link(seed: int, packets_per_s: float, clear_after_s: float | None) -> tuple[int, float | None]:
    """A paused subscriber's link as a browser reports it: ~35 reports/s over padding at the given rate,
    a congested first second and a half, then 5 % random loss (until ``clear_after_s``, then none).
    Returns (level changes, seconds from the clearing to the resume)."""
    chance = random.Random(seed)
    policy, estimator = VideoPolicy(), LinkEstimator()
    reports = Reports(estimator)
    reports.send(0.0, 0, 0, 0.16)
    t, due, changes, level, resumed = 0.0, 0.0, 0, policy.level, None
    for step in range(1, 1001):  # 30 s
        t = step * 0.03
        due += packets_per_s * 0.03
        sent = int(due)
        due -= sent
        if t < 1.5:
            lost = (sent + 1) // 2
        elif clear_after_s is not None and t >= clear_after_s:
            lost = 0
        else:
            lost = sum(chance.random() < 0.05 for _ in range(sent))
        reports.send(t, sent - lost, lost, 0.16)
        new = policy.update(estimator.snapshot(), t, others_sending=False)
        changes += new != level
        level = new
        if resumed is None and clear_after_s is not None and t >= clear_after_s and level == VideoLevel.ALL:
            resumed = t - clear_after_s
    return changes, resumed


def test_a_lossy_paused_link_does_not_flap_and_a_clear_one_resumes_soon() -> None:
    # 5 % random loss on a paused link measured by its padding (the weak-link lab test once saw a
    # smoothed figure under 2 % for the whole hold and resumed into a 300 kbit/s link)
    for rate in (40.0, 50.0):
        flaps = [seed for seed in range(150) if padded_link(seed, rate, None)[0] != 1]
        assert not flaps, f"flapped at {rate} packets/s with seeds {flaps}"
        resumes = [padded_link(seed, rate, 10.0)[1] for seed in range(10)]
        # the smoothed loss falls under the threshold within a second, then the hold's packets come
        assert all(r is not None and r < 1.5 + HOLD_MIN_PACKETS / rate for r in resumes), resumes


def test_a_report_spanning_seconds_does_not_bring_old_loss_into_the_present() -> None:
    # video padding reported often, audio every ~5 s: the audio block after the link recovered sums
    # the loss of the weak seconds before it
    policy, estimator = VideoPolicy(), LinkEstimator()
    video, audio = Reports(estimator, 1), Reports(estimator, 2)
    video.send(0.0, 0, 0)
    audio.send(0.0, 0, 0)
    policy.update(link(0.3), 0.0, others_sending=False)
    resumed = None
    for step in range(1, 400):
        t = step * 0.03
        video.send(t, 2, 0, 0.01)  # the link is clean from the start
        if step % 150 == 0:
            audio.send(t, 212, 11)  # ~4.5 s of audio, 5 % of it lost long ago
        if policy.update(estimator.snapshot(), t, others_sending=False) == VideoLevel.ALL:
            resumed = t
            break
    assert resumed is not None and resumed < MIN_PAUSE_S + 0.5, resumed
