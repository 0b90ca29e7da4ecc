"""Fixtures of the network tests: a lab of the project's own test hosts, torn down after each test."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.append(str(_HERE))

from netlab import Netlab, PhoneNetwork, netns_supported, phone_network  # noqa: E402


@pytest.fixture(scope="session")
def netns_ok() -> None:
    """Skip when this process cannot make network namespaces (not root, no iproute2/nftables)."""
    reason = netns_supported()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def lab(netns_ok: None) -> Iterator[Netlab]:
    """An empty lab; everything in it is removed after the test, also when it fails."""
    with Netlab() as built:
        yield built


@pytest.fixture
def net(lab: Netlab) -> PhoneNetwork:
    """The standard network: server, TURN relay, NAT router and a phone behind it (UDP allowed)."""
    return phone_network(lab)


@pytest.fixture
async def playwright() -> AsyncIterator[object]:
    """Playwright driving the system Chromium (the tests start it inside a host through a wrapper)."""
    from playwright.async_api import async_playwright

    if not os.access("/usr/bin/chromium", os.X_OK):
        pytest.skip("/usr/bin/chromium is not installed")
    async with async_playwright() as driver:
        yield driver
