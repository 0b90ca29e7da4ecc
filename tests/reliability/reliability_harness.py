"""Shared pieces of the reliability suite: size knobs and fixture types."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

MakeApi = Callable[..., Awaitable[Any]]
MakeBench = Callable[..., Awaitable[Any]]


def env_int(name: str, default: int) -> int:
    """A size knob from the environment (CI uses the defaults; larger runs set the variable)."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    """A duration knob from the environment."""
    return float(os.environ.get(name, default))
