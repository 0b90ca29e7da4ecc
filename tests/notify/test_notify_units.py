"""The pieces without peers: address checks, message texts, the link vault, the retry schedule, and the
configuration of the two channels (a bad SMS template is a configuration error; secrets are never shown)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hearing_server.cli import effective_settings
from hearing_server.config import ConfigError, load_config
from hearing_server.domain.errors import InvalidInput
from hearing_server.domain.notification import Channel, NotificationKind, normalize_email, normalize_phone
from hearing_server.notify.link_vault import LinkVault, LinkVaultError
from hearing_server.notify.messages import TEMPLATES, HearingFacts, render
from hearing_server.notify.sms_gateway import fill_template
from hearing_server.notify.worker import DeliveryPolicy


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 705 123 45 67", "+77051234567"),
        ("8 (705) 123-45-67", "+77051234567"),
        ("+49 30 1234567", "+49301234567"),
    ],
)
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["a@b", "a b@example.kz", "@example.kz", "a@example.kz\nBcc: x@y.kz", "a@-x.kz"]
)
def test_malformed_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"


FACTS = HearingFacts(
    court="Court",
    case_number="2-1/2026",
    title="A v. B",
    courtroom="4",
    start=datetime(2026, 3, 5, 4, 0, tzinfo=UTC),
    zone="Asia/Almaty",
    party_name="Aigul",
    link="https://court.example/join/TOKEN",
    act_title="Decision No. 5",
)


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
@pytest.mark.parametrize("kind", list(NotificationKind))
@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS])
def test_every_message_names_court_case_time_and_carries_the_link_when_it_should(
    language: str, kind: NotificationKind, channel: Channel
) -> None:
    subject, text = render(kind, channel, language, FACTS)
    when = FACTS.start.astimezone(ZoneInfo("Asia/Almaty")).strftime("%d.%m.%Y %H:%M")
    assert "2-1/2026" in subject and "2-1/2026" in text
    if kind is NotificationKind.ACT:
        assert "Decision No. 5" in subject and "Decision No. 5" in text  # an act names the act, not a date
    else:
        assert when in subject and when in text
    assert ("https://court.example/join/TOKEN" in text) == kind.carries_link
    if channel is Channel.SMS:
        assert len(text) < 300


def test_the_three_languages_have_the_same_messages() -> None:
    assert set(TEMPLATES) == {"kk", "ru", "en"}
    for language in TEMPLATES:
        assert set(TEMPLATES[language]) == set(NotificationKind)


def test_a_kept_link_opens_only_with_its_key_and_for_its_invitation(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "link.key"
    vault = LinkVault.from_file(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    sealed = vault.seal("https://court.example/join/TOKEN", "inv-1")
    assert "TOKEN" not in sealed
    assert LinkVault.from_file(key_file).open(sealed, "inv-1") == "https://court.example/join/TOKEN"
    with pytest.raises(LinkVaultError):
        vault.open(sealed, "inv-2")
    with pytest.raises(LinkVaultError):
        LinkVault.from_file(tmp_path / "other.key").open(sealed, "inv-1")


def test_retries_back_off_and_are_capped() -> None:
    policy = DeliveryPolicy(retry_base_s=60, retry_max_s=600)
    assert [policy.retry_delay(n) for n in range(1, 6)] == [
        timedelta(seconds=s) for s in (60, 120, 240, 480, 600)
    ]


def test_sms_template_is_filled_inside_json_strings_only() -> None:
    template = {"msisdn": "{to}", "message": {"body": "{text}"}, "flash": False}
    text = 'He said "hi" {to}\n'
    assert fill_template(template, {"to": "+77051234567", "text": text}) == {
        "msisdn": "+77051234567",
        "message": {"body": text},
        "flash": False,
    }


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("HEARING_SMS_BODY_TEMPLATE", "not json"),
        ("HEARING_SMS_BODY_TEMPLATE", '{"to": "{to}"}'),
        ("HEARING_SMS_AUTH_HEADER", "Bearer abc"),
        ("HEARING_SMTP_SECURITY", "ssl"),
    ],
)
def test_unusable_channel_options_are_configuration_errors(option: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={option: value})
    assert option.removeprefix("HEARING_").lower() in str(caught.value)


def test_configuration_shown_hides_the_secrets() -> None:
    config = load_config(
        environ={
            "HEARING_SMTP_PASSWORD": "pw-123",
            "HEARING_SMS_AUTH_HEADER": "Authorization: Bearer key-456",
        }
    )
    shown = str(effective_settings(config))
    assert "pw-123" not in shown and "key-456" not in shown
    assert effective_settings(config)["sms_auth_header"] == "Authorization: (hidden)"
