"""The caller's address: the connection's peer, or behind a trusted reverse proxy the rightmost hop of
X-Forwarded-For that is not itself a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from hearing_server.auth.client import forwarded_client
from hearing_server.config import ConfigError, load_config

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: the header is ignored
        ("10.0.0.2", [], "10.0.0.2"),  # a proxy that said nothing
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own claim is left of it
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # two headers, a proxy chain
        ("10.0.0.2", ["10.1.1.1, 10.2.2.2"], "10.1.1.1"),  # only proxies: the farthest one
        ("10.0.0.2", ["6.6.6.6, not-an-address"], "10.0.0.2"),  # garbage: believe nothing behind it
        ("10.0.0.2", ["198.51.100.1:5060"], "198.51.100.1"),
        ("10.0.0.2", ["[2001:db9::7]:443"], "2001:db9::7"),
        ("2001:db8::1", ["2001:db9::7"], "2001:db9::7"),
        ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped proxy address
        ("", ["198.51.100.1"], ""),  # no peer (a unix socket): nothing to trust
    ],
)
def test_the_address_recorded_for_a_caller(peer: str, header: list[str], expected: str) -> None:
    assert forwarded_client(peer, header, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert forwarded_client("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    config = load_config(environ={"HEARING_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,2001:db8::/32"})
    networks = [str(n) for n in config.trusted_proxy_networks]
    assert networks == ["10.0.0.1/32", "192.168.0.0/16", "2001:db8::/32"]
    assert load_config(environ={}).trusted_proxies == []
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(environ={"HEARING_TRUSTED_PROXIES": "proxy.example"})
