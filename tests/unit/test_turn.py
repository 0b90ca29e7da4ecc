"""Short-lived TURN credentials: the TURN REST API scheme, per participant, only when configured."""

from __future__ import annotations

import pytest

from hearing_server.config import ConfigError, load_config
from hearing_server.turn import SERVER_USER, ice_servers, ice_servers_for, turn_credentials


def test_credentials_follow_the_turn_rest_scheme() -> None:
    # printf '%s' '1700000600:p-1' | openssl dgst -sha1 -hmac north-wind -binary | base64
    username, password = turn_credentials("north-wind", "p-1", 600, now=1_700_000_000.7)
    assert username == "1700000600:p-1"
    assert password == "pONomRpY3GW2/QpOU9e0ovEStxE="


def test_the_user_part_cannot_smuggle_another_expiry() -> None:
    username, _ = turn_credentials("s", "9999999999:x", 60, now=1000)
    assert username == "1060:9999999999_x"


def test_no_relay_configured_means_only_the_plain_ice_servers() -> None:
    config = load_config(environ={}, ice_servers=["stun:198.18.0.20:3478"])
    assert ice_servers(config, "p-1") == [{"urls": "stun:198.18.0.20:3478"}]
    assert ice_servers_for(config)(None) == [{"urls": "stun:198.18.0.20:3478"}]


def test_each_participant_gets_its_own_credentials() -> None:
    config = load_config(
        environ={},
        turn_urls=["turn:turn.example:3478?transport=tcp", "turns:turn.example:443?transport=tcp"],
        turn_secret="north-wind",
        turn_ttl_s=600,
    )
    first = ice_servers(config, "p-1", now=1_700_000_000)
    second = ice_servers(config, "p-2", now=1_700_000_000)
    assert first[0]["urls"] == list(config.turn_urls)
    assert first[0]["username"] == "1700000600:p-1"
    assert first[0]["credential"] == "pONomRpY3GW2/QpOU9e0ovEStxE="
    assert second[0]["username"] == "1700000600:p-2"
    assert second[0]["credential"] != first[0]["credential"]
    assert ice_servers_for(config)("p-2")[0]["username"].endswith(":p-2")
    assert ice_servers_for(config)(None)[0]["username"].endswith(f":{SERVER_USER}")


def test_turn_options_from_the_environment() -> None:
    config = load_config(
        environ={
            "HEARING_TURN_URLS": "turn:a:3478, turns:a:443?transport=tcp",
            "HEARING_TURN_SECRET": "s3",
            "HEARING_TURN_TTL_S": "3600",
        }
    )
    assert config.turn_urls == ["turn:a:3478", "turns:a:443?transport=tcp"]
    assert config.turn_ttl_s == 3600


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"turn_urls": ["turn:a:3478"]}, "turn_secret"),
        ({"turn_urls": ["stun:a:3478"], "turn_secret": "s"}, "turn_urls"),
        ({"turn_ttl_s": 5}, "turn_ttl_s"),
    ],
)
def test_bad_turn_options_name_the_option(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ={}, **overrides)
