"""The recorder's inbox: order kept, packets never wake the writer, commands do."""

from __future__ import annotations

import threading
import time

from recording.inbox import Inbox


def test_items_come_out_in_order_and_once() -> None:
    inbox = Inbox()
    for item in range(1000):
        inbox.put(item)
    inbox.put_now("stop")
    assert len(inbox) == 1001
    assert inbox.take(0) == [*range(1000), "stop"]
    assert inbox.take(0) == [] and len(inbox) == 0


def test_a_put_waits_for_the_interval_a_put_now_wakes_at_once() -> None:
    inbox = Inbox()
    inbox.put("packet")
    started = time.monotonic()
    assert inbox.take(0.2) == ["packet"]
    assert time.monotonic() - started >= 0.19  # not woken by a plain put

    taken: list[object] = []
    consumer = threading.Thread(target=lambda: taken.extend(inbox.take(10.0)))
    consumer.start()
    time.sleep(0.05)
    started = time.monotonic()
    inbox.put_now("end")
    consumer.join(5)
    assert taken == ["end"] and time.monotonic() - started < 1.0


def test_a_wake_after_a_take_is_kept_for_the_next_take() -> None:
    inbox = Inbox()
    inbox.put_now("first")
    assert inbox.take(0) == ["first"]
    inbox.put_now("second")
    started = time.monotonic()
    assert inbox.take(10.0) == ["second"]
    assert time.monotonic() - started < 1.0
