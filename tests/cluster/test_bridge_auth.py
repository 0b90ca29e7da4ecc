"""Signed bridge openings: accepted once within the clock skew, refused when forged, stale or replayed."""

from __future__ import annotations

import pytest

from hearing_server.cluster.bridge_auth import BridgeRefused, OpeningVerifier, sign_opening

SECRET = "a cluster secret for the tests"
NOW = 1_800_000_000.0


def _opening(now: float = NOW, **changes: str) -> dict[str, str]:
    fields = {
        "from_node": "b",
        "to_node": "a",
        "hearing_id": "h1",
        "client_ip": "198.18.0.7",
        "client_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) Тест",
    }
    return sign_opening(SECRET, now=now, **(fields | changes))


@pytest.mark.parametrize("skew", [-5.0, 0.0, 5.0])
def test_an_opening_from_a_node_with_a_skewed_clock_is_accepted_once(skew: float) -> None:
    verifier = OpeningVerifier(SECRET, "a", clock=lambda: NOW)
    headers = _opening(now=NOW + skew)
    opening = verifier.verify(headers)
    assert (opening.from_node, opening.hearing_id, opening.client_ip) == ("b", "h1", "198.18.0.7")
    assert opening.client_agent.endswith("Pixel 7) Тест")
    with pytest.raises(BridgeRefused, match="replayed"):
        verifier.verify(headers)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "bad signature"),
        (
            sign_opening(
                "another secret", from_node="b", to_node="a", hearing_id="h1", client_ip="", client_agent=""
            ),
            "bad signature",
        ),  # noqa: E501
        (_opening(to_node="c"), "addressed to node"),
        (_opening(now=NOW - 31), "stale"),
        (_opening(now=NOW + 31), "stale"),
    ],
)
def test_forged_misdirected_and_stale_openings_are_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(BridgeRefused, match=reason):
        OpeningVerifier(SECRET, "a", clock=lambda: NOW).verify(headers)


def test_a_changed_field_breaks_the_signature() -> None:
    headers = _opening()
    headers["X-Hearing-Bridge-Client-Ip"] = "10.0.0.1"
    with pytest.raises(BridgeRefused, match="bad signature"):
        OpeningVerifier(SECRET, "a", clock=lambda: NOW).verify(headers)
