"""Logging: plain text or JSON lines, with bearer secrets (link tokens, cookies, passwords) scrubbed."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, Request, StreamResponse

from hearing_server.auth.client import client_ip
from hearing_server.config import CONFIG

_LINK_TOKEN = re.compile(r"(/join/)[A-Za-z0-9_-]+")
_NAMED_SECRET = re.compile(
    r"((?:token|password|hs_session|x-csrf-token)[\"']?\s*[=:]\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s&;,\"']+)",
    re.IGNORECASE,
)
QUIET_LIBRARIES = ("aiosqlite",)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with link tokens, session cookies, CSRF tokens and passwords replaced by ``[redacted]``."""
    text = _LINK_TOKEN.sub(r"\1[redacted]", text)
    return _NAMED_SECRET.sub(_hide_value, text)


def _hide_value(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}[redacted]{quote}"


class TextFormatter(logging.Formatter):
    """``time level logger: message`` lines, scrubbed of secrets (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, extra fields, exception; scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, method, path without query, status, time; never cookies or tokens."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        # Behind a trusted reverse proxy the client, not the proxy (the same rule as everywhere else).
        remote = request.remote
        if isinstance(request, Request) and CONFIG in request.app:
            remote = client_ip(request)
        self.logger.info(
            "%s %s %s %s %.1fms",
            remote,
            request.method,
            redact(request.path),
            response.status,
            time * 1000,
            extra={"remote": remote, "method": request.method, "status": response.status},
        )


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Send logs to stderr as text or JSON lines, scrubbed of secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiosqlite logs every statement with its parameters at DEBUG (CSRF tokens among them): never below INFO
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))
