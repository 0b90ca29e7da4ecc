"""Typed keys for the application's shared state (no module globals)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hearing_server.config import Config
from hearing_server.events import EventRecorder

if TYPE_CHECKING:  # imported for typing only: these modules import this one
    from hearing_server.api.metrics import Metrics
    from hearing_server.api.registry import RouteTable
    from hearing_server.auth.passwords import Passwords
    from hearing_server.auth.ratelimit import LoginLimiter

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
EVENTS = web.AppKey("events", EventRecorder)

ROUTES: web.AppKey[RouteTable] = web.AppKey("routes")
PASSWORDS: web.AppKey[Passwords] = web.AppKey("passwords")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SCHEDULE_LOCK = web.AppKey("schedule_lock", asyncio.Lock)
