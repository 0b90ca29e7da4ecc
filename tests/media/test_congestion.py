"""The per-subscriber link estimate and video policy (pure: times passed in)."""

from __future__ import annotations

from media.congestion import (
    MIN_PAUSE_S,
    LinkEstimator,
    LinkSnapshot,
    VideoLevel,
    VideoPolicy,
    is_clear,
    is_congested,
)


def link(loss: float, rtt: float = 0.05) -> LinkSnapshot:
    return LinkSnapshot(loss, rtt, None, 500_000.0)


def test_estimator_smooths_loss_and_round_trip() -> None:
    estimator = LinkEstimator()
    estimator.report(0.0, 0.1)
    estimator.report(0.4, None)
    assert estimator.loss is not None and 0.15 < estimator.loss < 0.25
    estimator.report(0.0, 0.5)
    assert estimator.round_trip_s is not None and 0.1 < estimator.round_trip_s < 0.5
    estimator.remb(250_000)
    assert estimator.snapshot().remb_bps == 250_000


def test_estimator_measures_the_bitrate_sent() -> None:
    estimator = LinkEstimator()
    estimator.sent(0, 0.0)
    estimator.sent(62_500, 1.0)  # 500 kbit in a second
    estimator.sent(125_000, 2.0)
    assert 350_000 < estimator.sent_bps <= 500_000


def test_a_band_between_clear_and_congested() -> None:
    assert is_congested(link(0.3)) and not is_clear(link(0.3))
    assert is_congested(link(0.0, rtt=0.9))
    assert not is_congested(link(0.05)) and not is_clear(link(0.05))  # 5 % random loss: hold
    assert is_clear(link(0.0))


def test_congestion_pauses_others_first_then_the_priority_video() -> None:
    policy = VideoPolicy()
    assert policy.update(link(0.0), 0.0) == VideoLevel.ALL
    assert policy.update(link(0.3), 1.0) == VideoLevel.PRIORITY_ONLY
    assert policy.update(link(0.3), 1.5) == VideoLevel.PRIORITY_ONLY  # held a second first
    assert policy.update(link(0.3), 2.1) == VideoLevel.NONE


def test_without_other_video_the_priority_only_level_is_skipped() -> None:
    policy = VideoPolicy()
    assert policy.update(link(0.3), 1.0, others_sending=False) == VideoLevel.NONE
    for t in range(2, 12):
        level = policy.update(link(0.0), float(t), others_sending=False)
    assert level == VideoLevel.ALL


def test_recovery_waits_for_a_clear_link_and_the_minimum_pause() -> None:
    policy = VideoPolicy()
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
    changes = 0
    level = policy.level
    # a weak link: reports alternate between no loss and 10 % (5 % on average) for a minute
    estimator.report(0.5, 0.2)
    for step in range(120):
        estimator.report(0.1 if step % 2 else 0.0, 0.2)
        new = policy.update(estimator.snapshot(), step * 0.5, others_sending=False)
        changes += new != level
        level = new
    assert level == VideoLevel.NONE and changes == 1


def test_one_clear_report_in_a_congested_stretch_does_not_resume() -> None:
    policy = VideoPolicy()
    policy.update(link(0.3), 0.0, others_sending=False)
    for t in range(1, 20):
        loss = 0.0 if t % 3 == 0 else 0.3
        assert policy.update(link(loss), float(t), others_sending=False) == VideoLevel.NONE
