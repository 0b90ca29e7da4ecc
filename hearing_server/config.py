"""Server configuration: embedded defaults, then an optional TOML file, then ``HEARING_*`` variables."""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "HEARING_"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration cannot be used; the message says which option and why."""


class Config(BaseModel):
    """Every option of the server, with its embedded default (documented in the README)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(
        Path("data"), description="Folder holding the database, recordings, keys and TLS files."
    )
    host: str = Field("0.0.0.0", description="Address the HTTPS server listens on.")  # noqa: S104
    port: int = Field(8443, ge=1, le=65535, description="Port the server listens on.")
    public_url: str = Field(
        "", description="Address parties use to reach the server; default https://localhost:PORT."
    )
    database_url: str = Field("", description="SQLAlchemy URL; default SQLite file DATA_DIR/hearing.db.")
    plain_http: bool = Field(
        False, description="Serve plain HTTP (only behind a TLS-terminating reverse proxy)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed; default none.",
    )
    tls_cert: Path | None = Field(
        None, description="TLS certificate (PEM); default self-signed DATA_DIR/tls/cert.pem."
    )
    tls_key: Path | None = Field(None, description="TLS private key (PEM); default DATA_DIR/tls/key.pem.")
    court_name: str = Field("Development Court", description="Court name shown to parties and in the seal.")
    timezone: str = Field("Asia/Almaty", description="The court's time zone for dates shown to people.")
    court_cert: Path | None = Field(None, description="Court signing certificate (PEM); default self-signed.")
    court_key: Path | None = Field(
        None, description="Court signing key (PEM); default DATA_DIR/court/court-key.pem."
    )
    invitation_grace_hours: float = Field(
        6.0, ge=0, description="Links expire at the end of the hearing's day plus this."
    )
    session_hours: float = Field(12.0, gt=0, description="Lifetime of a staff login session.")
    first_password_hours: float = Field(
        24.0, gt=0, description="The first admin's one-time password stops working after this many hours."
    )
    login_attempts: int = Field(
        5, ge=1, description="Failed logins allowed per username and address per window."
    )
    login_window_s: float = Field(300.0, gt=0, description="Window of the login rate limit, seconds.")
    checkpoint_entries: int = Field(
        25, ge=1, description="Sign a live confirmation log (a checkpoint) at least every this many entries."
    )
    checkpoint_interval_s: float = Field(
        60.0, gt=0, description="Sign a live log's unsigned entries within about this many seconds."
    )
    token_failures_per_address: int = Field(
        20, ge=1, description="Unusable invitation links per address per minute before more are refused."
    )
    token_failures_budget: int = Field(
        1000, ge=1, description="Unusable invitation links per minute server-wide before more are refused."
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest accepted REST request body.")
    max_participants: int = Field(16, ge=2, description="Most participants connected to one hearing.")
    ws_max_message_bytes: int = Field(65536, ge=1024, description="Largest accepted signaling message.")
    ws_messages_per_s: float = Field(
        20.0, gt=0, description="Sustained signaling messages per second per connection."
    )
    ws_join_timeout_s: float = Field(
        10.0, gt=0, description="A signaling socket that has not joined by then is closed."
    )
    ws_per_address: int = Field(32, ge=1, description="Signaling sockets one address may hold open.")
    ws_unjoined_per_address: int = Field(
        8, ge=1, description="Signaling sockets one address may hold before they join."
    )
    connections_per_address: int = Field(
        128, ge=0, description="Open connections per client address (0: no cap; none with plain_http)."
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="Time for a request's headers to arrive; idle connections close after it."
    )
    tls_handshake_timeout_s: float = Field(10.0, gt=0, description="Time for a TLS handshake to finish.")
    reconnect_grace_s: float = Field(
        60.0, ge=0, description="How long a dropped party may rejoin without admission."
    )
    shutdown_grace_s: float = Field(
        20.0,
        ge=0,
        description="At shutdown, how long sealing a just-ended hearing may finish; the next start seals it "
        "if not.",
    )
    readmit_after_interruption: Literal["operator", "automatic"] = Field(
        "operator",
        description="After a server interruption, parties admitted before it skip the notice and are "
        "re-admitted by the operator (one click) or automatically.",
    )
    ice_host_addresses: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Addresses offered as ICE host candidates; set to the server's reachable addresses.",
    )
    ice_servers: list[str] = Field(
        default_factory=list, description="STUN/TURN URLs; none unless configured."
    )
    turn_urls: list[str] = Field(
        default_factory=list,
        description="TURN relay URLs (turn:/turns:), offered with short-lived credentials.",
    )
    turn_secret: str = Field(
        "",
        description="Shared secret of the TURN relay (coturn static-auth-secret); required with turn_urls.",
    )
    turn_ttl_s: int = Field(
        86400, ge=60, description="Lifetime of a participant's TURN credentials, seconds."
    )
    video_codec: Literal["VP8", "H264"] = Field("VP8", description="The one video codec of every hearing.")
    media_workers: int | None = Field(
        None,
        ge=0,
        description="Media worker processes hosting hearings' media and recording; default one per core, "
        "0 = media in the server process.",
    )
    ice_port_min: int | None = Field(
        None, ge=1, le=65535, description="Lowest UDP port for ICE (media); open this range in the firewall."
    )
    ice_port_max: int | None = Field(
        None, ge=1, le=65535, description="Highest UDP port for ICE; both or neither of the pair are set."
    )
    worker_max_hearings: int = Field(
        16,  # two thirds of the 24 recorded 4-party hearings one core held in `make bench`
        ge=1,
        description="Hearings one media worker hosts at most; beyond every worker's, starting is refused.",
    )
    max_open_logs: int = Field(
        64, ge=1, description="Confirmation logs kept open at once; the least recently used are closed."
    )
    min_free_disk_mb: int = Field(1024, ge=0, description="Hearings do not start below this free space.")
    retention_days: int = Field(3650, ge=1, description="Default retention of sealed hearings.")
    log_json: bool = Field(False, description="Write logs as JSON lines.")
    log_level: str = Field("INFO", description="Log level.")
    uvloop: bool = Field(True, description="Run the server on uvloop when installed.")
    node_id: str = Field(
        "", max_length=64, description="This node's name in a cluster (PostgreSQL only); empty: single node."
    )
    cluster_internal_url: str = Field(
        "", description="Where other nodes reach this node's internal endpoint; default the public URL."
    )
    cluster_secret: str = Field(
        "", description="Shared secret of the nodes' internal channel; required with node_id."
    )
    node_capacity: int = Field(8, ge=1, description="Most live hearings this node hosts in a cluster.")
    cluster_heartbeat_s: float = Field(
        2.0, gt=0, description="How often a node heartbeats and renews leases."
    )
    drain_limit_s: float = Field(
        14400.0, ge=0, description="A draining node interrupts hearings still live after this, then exits."
    )
    cluster_lease_s: float = Field(
        8.0, gt=0, description="A hearing's lease (and a silent node's life) lasts this long, seconds."
    )
    smtp_host: str = Field("", description="SMTP server for e-mail invitations; empty: no e-mail channel.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (implicit TLS, port 465) or none (trusted relay)."
    )
    smtp_username: str = Field("", description="SMTP login; empty: no authentication.")
    smtp_password: str = Field("", description="SMTP password.")
    smtp_from: str = Field("", description="From address of the court's mails, e.g. court@sud.kz.")
    smtp_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) trusted for the SMTP server; default the system's."
    )
    smtp_timeout_s: float = Field(30.0, gt=0, description="Give up on an SMTP delivery attempt after this.")
    sms_url: str = Field("", description="HTTP(S) URL of the SMS gateway; empty: no SMS channel.")
    sms_auth_header: str = Field(
        "", description="Header sent to the gateway, 'Name: value' (e.g. 'Authorization: Bearer KEY')."
    )
    sms_body_template: str = Field(
        '{"to": "{to}", "text": "{text}"}',
        description="JSON body posted to the gateway; {to} and {text} in its strings are filled in.",
    )
    sms_timeout_s: float = Field(15.0, gt=0, description="Give up on an SMS gateway request after this.")
    notify_reminder_hours: list[float] = Field(
        default_factory=lambda: [24.0, 1.0],
        description="Reminders sent this many hours before a hearing to parties invited by e-mail or SMS.",
    )
    notify_max_attempts: int = Field(
        6, ge=1, description="Delivery attempts of one message before giving up."
    )
    notify_retry_base_s: float = Field(
        60.0, gt=0, description="First retry delay; doubles with every failed attempt."
    )
    notify_retry_max_s: float = Field(3600.0, gt=0, description="Longest delay between two attempts.")
    notify_poll_s: float = Field(5.0, gt=0, description="How often the delivery queue is looked at.")
    notify_hearing_per_minute: int = Field(
        60, ge=1, description="Most messages sent per hearing per minute (the rest wait)."
    )
    notify_recipient_per_hour: int = Field(
        10, ge=1, description="Most messages sent to one address or number per hour (the rest wait)."
    )
    act_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest court act (PDF) accepted for signing, bytes."
    )
    act_link_days: float = Field(
        30.0,
        ge=0,
        description="A party's link still opens the hearing's acts this many days after it expires.",
    )
    acts_court_key_fallback: bool = Field(
        True, description="A judge without their own signing key signs acts with the court's key."
    )
    judge_trust_roots: Path | None = Field(
        None,
        description="PEM bundle of the CAs judges' signing certificates must chain to (checked when a key is "
        "uploaded and at each signing); unset: no chain is required.",
    )
    judge_crls: list[Path] = Field(
        default_factory=list,
        description="Certificate revocation lists (PEM or DER) of the court's CAs, re-read at each check: a "
        "judge's certificate they list is refused at upload and at each signing. The server fetches nothing: "
        "replace the files as the CAs publish new lists. Needs judge_trust_roots.",
    )
    notify_link_key: Path | None = Field(
        None, description="Key that encrypts links kept for reminders; default DATA_DIR/keys/link.key."
    )

    @field_validator("judge_trust_roots")
    @classmethod
    def _trust_roots_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"judge_trust_roots: no file at {value}")
        return value

    @field_validator("judge_crls")
    @classmethod
    def _crls_exist(cls, value: list[Path]) -> list[Path]:
        missing = [str(path) for path in value if not path.is_file()]
        if missing:
            raise ValueError(f"judge_crls: no file at {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _crls_need_roots(self) -> Config:
        if self.judge_crls and self.judge_trust_roots is None:
            raise ValueError(
                "judge_crls: revocation is checked on the path to judge_trust_roots; set them too"
            )
        return self

    @field_validator("sms_body_template")
    @classmethod
    def _usable_template(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(parsed, dict) or "{to}" not in value or "{text}" not in value:
            raise ValueError("must be a JSON object containing {to} and {text}")
        return value

    @field_validator("sms_auth_header")
    @classmethod
    def _one_header(cls, value: str) -> str:
        name, sep, _ = value.partition(":")
        if value and (not sep or not name.strip() or "\r" in value or "\n" in value):
            raise ValueError("must look like 'Name: value'")
        return value

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Config:
        bad = [url for url in self.turn_urls if not url.startswith(("turn:", "turns:"))]
        if bad:
            raise ValueError(f"turn_urls: not a turn: or turns: URL: {', '.join(bad)}")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_secret: required when turn_urls are set")
        return self

    @model_validator(mode="after")
    def _cluster_needs_postgres(self) -> Config:
        if self.node_id:
            if not self.database_url.startswith("postgresql"):
                raise ValueError("node_id: a cluster needs a PostgreSQL database_url")
            if len(self.cluster_secret) < 16:
                raise ValueError("cluster_secret: at least 16 characters required with node_id")
            if self.cluster_lease_s < 2 * self.cluster_heartbeat_s:
                raise ValueError("cluster_lease_s: must be at least twice cluster_heartbeat_s")
        return self

    @property
    def clustered(self) -> bool:
        """Whether this server is one node of a cluster."""
        return bool(self.node_id)

    @property
    def effective_internal_url(self) -> str:
        """The base URL other nodes use to reach this one."""
        return (self.cluster_internal_url or self.effective_public_url).rstrip("/")

    @model_validator(mode="after")
    def _ice_port_range(self) -> Config:
        low, high = self.ice_port_min, self.ice_port_max
        if (low is None) != (high is None):
            raise ValueError("ice_port_min and ice_port_max: set both or neither")
        if low is not None and high is not None and low > high:
            raise ValueError(f"ice_port_min ({low}) is above ice_port_max ({high})")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or CIDR: {item!r}") from exc
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """The trusted reverse proxies as networks (a single address is a /32 or /128)."""
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in self.trusted_proxies)

    @property
    def effective_media_workers(self) -> int:
        """Media worker processes to start: as configured, else one per core this process may use."""
        if self.media_workers is not None:
            return self.media_workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    @property
    def effective_database_url(self) -> str:
        """The database URL in use."""
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'hearing.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        """The base URL of the server as parties see it."""
        scheme = "http" if self.plain_http else "https"
        return (self.public_url or f"{scheme}://localhost:{self.port}").rstrip("/")

    @property
    def recordings_dir(self) -> Path:
        """Where hearing folders are written."""
        return self.data_dir / "recordings"

    @property
    def tls_cert_path(self) -> Path:
        """The TLS certificate in use."""
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def tls_key_path(self) -> Path:
        """The TLS key in use."""
        return self.tls_key or self.data_dir / "tls" / "key.pem"

    @property
    def court_cert_path(self) -> Path:
        """The court's sealing certificate."""
        return self.court_cert or self.data_dir / "court" / "court.pem"

    @property
    def link_key_path(self) -> Path:
        """The key encrypting links kept for reminders."""
        return self.notify_link_key or self.data_dir / "keys" / "link.key"

    @property
    def court_key_path(self) -> Path:
        """The court's sealing key."""
        return self.court_key or self.data_dir / "court" / "court-key.pem"


def _parse_env_value(name: str, raw: str) -> Any:
    field = Config.model_fields[name]
    if "list" in str(field.annotation):
        raw = raw.strip()
        if raw.startswith("["):
            return json.loads(raw)
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def load_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Build the configuration: defaults, then the TOML file, then the environment, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = path or (Path(environ[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in environ else None)
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
    for name in Config.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            try:
                values[name] = _parse_env_value(name, environ[key])
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{key}: not a JSON list: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Config(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc


CONFIG = web.AppKey("config", Config)
