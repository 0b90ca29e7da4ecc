"""The ``hearing-server`` command: serve, migrate the database, add accounts, show the configuration."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from hearing_server import __version__
from hearing_server.config import Config, ConfigError, load_config
from hearing_server.domain.errors import HearingError
from hearing_server.domain.party import StaffRole
from media.sender import native_sending

SHUTDOWN_TIMEOUT_S = 10.0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML configuration file (or HEARING_CONFIG)")
    common.add_argument("--data-dir", type=Path, help="data directory (or HEARING_DATA_DIR; default ./data)")

    parser = argparse.ArgumentParser(prog="hearing-server", description="Self-hosted WebRTC video hearings.")
    parser.add_argument("--version", action="version", version=f"hearing-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="run the server (migrates the database first)"
    )
    serve.add_argument("--host", help="listen address (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default 8443)")
    serve.add_argument("--cert", type=Path, help="TLS certificate (PEM) instead of the self-signed one")
    serve.add_argument("--key", type=Path, help="TLS private key (PEM) for --cert")
    serve.add_argument(
        "--plain-http",
        action="store_true",
        default=None,
        help="serve plain HTTP (only behind a TLS reverse proxy)",
    )
    serve.add_argument(
        "--media-workers",
        type=int,
        metavar="N",
        help="media worker processes (or HEARING_MEDIA_WORKERS; default one per core, 0 = in-process media)",
    )
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="bring the schema to the newest version").set_defaults(
        run=_db_upgrade
    )

    user = commands.add_parser("user", help="staff accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", parents=[common], help="create a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    add.add_argument("--display-name", default="")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    add.set_defaults(run=_user_add)

    config = commands.add_parser("config", help="configuration").add_subparsers(
        dest="config_command", required=True
    )
    show = config.add_parser("show", parents=[common], help="print the effective configuration (no secrets)")
    show.add_argument("--format", choices=["toml", "json"], default="toml")
    show.set_defaults(run=_config_show)

    node = commands.add_parser("node", help="cluster node commands").add_subparsers(
        dest="node_command", required=True
    )
    drain = node.add_parser(
        "drain", parents=[common], help="a node takes no new hearings and exits after its live ones end"
    )
    drain.add_argument("--node-id", help="the node to drain (default: HEARING_NODE_ID of this shell)")
    drain.set_defaults(run=_node_drain)

    # The archive tools parse their own options (and --help): all after `archive` goes to them untouched.
    archive = commands.add_parser(
        "archive", add_help=False, help="verify PACKAGE.zip|FOLDER, or purge hearings past retention"
    )
    archive.add_argument("args", nargs=argparse.REMAINDER)
    archive.set_defaults(run=_archive)
    return parser


def _load(args: argparse.Namespace, **overrides: Any) -> Config:
    return load_config(args.config, data_dir=args.data_dir, **overrides)


def _serve(args: argparse.Namespace) -> int:
    from hearing_server.bootstrap import FIRST_ADMIN, first_start
    from hearing_server.logs import AccessLogger, setup_logging
    from hearing_server.memory import return_large_blocks
    from hearing_server.store.db import upgrade_sync
    from hearing_server.tls import server_ssl_context
    from hearing_server.web.app import create_app
    from hearing_server.web.listener import serve

    config = _load(
        args,
        host=args.host,
        port=args.port,
        tls_cert=args.cert,
        tls_key=args.key,
        plain_http=args.plain_http,
        media_workers=args.media_workers,
    )
    setup_logging(config.log_level, json_lines=config.log_json)
    return_large_blocks()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.recordings_dir.mkdir(parents=True, exist_ok=True)
    ssl_context = server_ssl_context(config)
    upgrade_sync(config.effective_database_url)
    password = asyncio.run(first_start(config))
    if password is not None:
        _say(
            f"The account '{FIRST_ADMIN}' has the one-time password: {password}",
            f"  (shown only now; valid for {config.first_password_hours:g} h and to be changed at the first"
            " login; a new one is issued at the next start if it expires unused)",
        )
    app = create_app(config)
    # The modules and the app live as long as the server: a full collection that walked them would pause
    # the media of every in-process hearing for a large fraction of a second (0.45 s for 660,000 objects).
    gc.collect()
    gc.freeze()
    serve(
        app,
        config,
        ssl_context,
        announce=lambda: _say(*_addresses(config)),
        loop=_event_loop(config),
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    return 0


def _addresses(config: Config) -> list[str]:
    base = config.effective_public_url
    scheme = "http" if config.plain_http else "https"
    lines = [
        f"hearing-server {__version__} listening on {scheme}://{config.host}:{config.port}",
        f"  Operator console: {base}/console/",
        f"  API:              {base}/api/v1/  (OpenAPI: {base}/api/v1/openapi.json)",
    ]
    if all(address.startswith("127.") or address == "::1" for address in config.ice_host_addresses):
        lines.append(
            "  Media (ICE) is offered on loopback only: set HEARING_ICE_HOST_ADDRESSES to the addresses"
            " phones can reach."
        )
    if not native_sending():
        lines.append(
            "  Media is sent from Python: media/_sender.c was not built (install gcc and python3-dev, then"
            " reinstall); forwarding costs about a third more CPU per packet."
        )
    return lines


def _event_loop(config: Config) -> asyncio.AbstractEventLoop | None:
    if not config.uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _say(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def _db_upgrade(args: argparse.Namespace) -> int:
    from hearing_server.store.db import upgrade_sync

    config = _load(args)
    upgrade_sync(config.effective_database_url)
    _say(f"database is up to date: {_safe_url(config.effective_database_url)}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ConfigError("the passwords differ")
    return first


def _node_drain(args: argparse.Namespace) -> int:
    config = _load(args)
    node_id = args.node_id or config.node_id
    if not node_id or not config.clustered:
        _say("node drain: a cluster node is needed (HEARING_NODE_ID and a PostgreSQL HEARING_DATABASE_URL)")
        return 2
    if not asyncio.run(_set_draining(config, node_id)):
        _say(f"node drain: no node {node_id!r} in the cluster")
        return 1
    _say(f"node {node_id} is draining: no new hearings; it exits after its live hearings end")
    return 0


async def _set_draining(config: Config, node_id: str) -> bool:
    from hearing_server.cluster.leases import NodeState, NodeTable
    from hearing_server.store.db import create_engine, sessionmaker

    engine = create_engine(config.effective_database_url)
    try:
        table = NodeTable(sessionmaker(engine), config.node_id, config.cluster_lease_s)
        return await table.set_state(NodeState.DRAINING, node_id)
    finally:
        await engine.dispose()


def _user_add(args: argparse.Namespace) -> int:
    from hearing_server.auth.passwords import check_password_rules
    from hearing_server.domain.errors import InvalidInput
    from hearing_server.domain.text import UnfitText, displayable_text
    from hearing_server.services.users import check_username
    from hearing_server.store.db import upgrade_sync

    config = _load(args)
    check_username(args.username)
    try:
        display_name = displayable_text(args.display_name.strip())
    except UnfitText as exc:
        raise InvalidInput(f"--display-name {exc}") from exc
    password = _read_password(args.password_stdin)
    check_password_rules(password)
    upgrade_sync(config.effective_database_url)
    asyncio.run(_create_user(config, args.username, StaffRole(args.role), password, display_name))
    _say(f"created the {args.role} account {args.username}")
    return 0


async def _create_user(
    config: Config, username: str, role: StaffRole, password: str, display_name: str
) -> None:
    from hearing_server.auth.passwords import Passwords
    from hearing_server.services.users import create_user
    from hearing_server.store.db import create_engine, sessionmaker

    engine = create_engine(config.effective_database_url)
    try:
        async with sessionmaker(engine)() as db, db.begin():
            await create_user(
                db,
                Passwords(),
                username=username,
                role=role,
                password=password,
                display_name=display_name,
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()


HIDDEN = "(hidden)"


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def effective_settings(config: Config) -> dict[str, Any]:
    """Every option with the value in use (derived defaults filled in, passwords and keys hidden; unset
    options without a default, such as the ICE port range, left out: TOML has no null)."""
    values = {k: v for k, v in config.model_dump(mode="json").items() if v is not None}
    values.update(
        database_url=_safe_url(config.effective_database_url),
        public_url=config.effective_public_url,
        tls_cert=str(config.tls_cert_path),
        tls_key=str(config.tls_key_path),
        court_cert=str(config.court_cert_path),
        court_key=str(config.court_key_path),
        turn_secret="********" if config.turn_secret else "",
        media_workers=config.effective_media_workers,
        notify_link_key=str(config.link_key_path),
        smtp_password=HIDDEN if config.smtp_password else "",
        sms_auth_header=(config.sms_auth_header.partition(":")[0] + ": " + HIDDEN)
        if config.sms_auth_header
        else "",
    )
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _config_show(args: argparse.Namespace) -> int:
    values = effective_settings(_load(args))
    if args.format == "json":
        _say(json.dumps(values, indent=2, ensure_ascii=False))
    else:
        _say(*(f"{name} = {_toml_value(value)}" for name, value in values.items()))
    return 0


def _archive(args: argparse.Namespace) -> int:
    from archive import cli as archive_cli

    return int(archive_cli.main(list(args.args)) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"hearing-server: {exc}", file=sys.stderr)
        return 2
    except HearingError as exc:
        print(f"hearing-server: {exc.message}", file=sys.stderr)
        return 1
