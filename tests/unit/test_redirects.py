"""After logging in, a visitor goes back only to a path on this site: hostile ``next`` values are refused."""

from __future__ import annotations

import pytest

from hearing_server.auth.redirects import safe_next_path

# Every one of these leads a browser off the site (or is not a plain path) when assigned to location.
HOSTILE_NEXT = [
    "/\\evil.example",
    "//evil.example",
    "///evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\x00/evil.example",
    "/\x7f",
    "/console/\\..\\..\\evil",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    " /console/",
    "",
    "/" + "a" * 2000,
]
SAFE_NEXT = ["/", "/console/", "/console/hearing/01ABCDEF?tab=log#end", "/archive/hearing/x", "/a%2F%2Fb"]


@pytest.mark.parametrize("value", HOSTILE_NEXT)
def test_paths_that_could_leave_the_site_are_refused(value: str) -> None:
    assert safe_next_path(value) is None


@pytest.mark.parametrize("value", SAFE_NEXT)
def test_paths_on_this_site_are_kept_as_they_are(value: str) -> None:
    assert safe_next_path(value) == value


def test_nothing_given_is_refused() -> None:
    assert safe_next_path(None) is None
