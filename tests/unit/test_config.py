"""Configuration: defaults, TOML file, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearing_server.config import ConfigError, load_config


def test_defaults_are_sqlite_under_data_dir_and_loopback_ice() -> None:
    config = load_config(environ={})
    assert config.port == 8443
    assert config.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert config.effective_database_url.endswith("/data/hearing.db")
    assert config.ice_servers == []
    assert config.effective_public_url == "https://localhost:8443"
    assert config.readmit_after_interruption == "operator"
    automatic = load_config(environ={"HEARING_READMIT_AFTER_INTERRUPTION": "automatic"})
    assert automatic.readmit_after_interruption == "automatic"


def test_toml_then_environment(tmp_path: Path) -> None:
    toml = tmp_path / "hearing.toml"
    toml.write_text('port = 9000\ncourt_name = "Almaty City Court"\nice_host_addresses = ["10.0.0.5"]\n')
    config = load_config(
        toml, environ={"HEARING_PORT": "9443", "HEARING_ICE_HOST_ADDRESSES": "127.0.0.1, 127.0.0.2"}
    )
    assert config.port == 9443
    assert config.court_name == "Almaty City Court"
    assert config.ice_host_addresses == ["127.0.0.1", "127.0.0.2"]


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"HEARING_PORT": "eighty"}, "port"),
        ({"HEARING_VIDEO_CODEC": "AV1"}, "video_codec"),
        ({"HEARING_READMIT_AFTER_INTERRUPTION": "never"}, "readmit_after_interruption"),
        ({"HEARING_ICE_SERVERS": "[not json"}, "HEARING_ICE_SERVERS"),
    ],
)
def test_bad_values_name_the_option(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ=environ)


def test_unknown_option_in_file_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "hearing.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(toml, environ={})
