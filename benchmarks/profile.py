"""What the server spends its CPU on during a measured window: py-spy, summed by thread and function.

``--profile`` samples the server process with py-spy (``pip install py-spy``) for the window and keeps
the raw stacks next to the scenario's log; the summary gives each thread's share of the samples and
the lines with the most samples on top of the stack ("self"): a C call (pylibsrtp, ``sendto``, PyAV)
is charged to the Python line that makes it.  Sampling is non-blocking, so it does not slow the server.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_NAME = re.compile(r"^(?P<function>[^ ]+) \((?P<file>[^:)]+)(?::(?P<line>\d+))?")


PROFILE_NATIVE = bool(os.environ.get("HEARING_BENCH_NATIVE"))  # C frames too; py-spy then pauses the server


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarize(raw: str, top: int = 15) -> dict[str, Any]:
    """Per-thread shares and the top self-time functions of py-spy's raw (collapsed) output."""
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        count = int(match["count"])
        frames = match["stack"].split(";")
        total += count
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else "?"
        threads[re.sub(r"_\d+$", "", thread)] += count
        leaf = _FRAME_NAME.match(frames[-1])
        where = f"{Path(leaf['file']).name}:{leaf['line']}" if leaf and leaf["line"] else ""
        leaves[f"{leaf['function']} ({where})" if leaf else frames[-1]] += count
    share = {name: round(100 * n / total, 1) for name, n in threads.most_common()} if total else {}
    functions = [(name, round(100 * n / total, 1)) for name, n in leaves.most_common(top)] if total else []
    return {"samples": total, "threads_pct": share, "self_pct": functions}


async def profile_window(
    pid: int, start: float, seconds: float, log_dir: Path, name: str, native: bool = False
) -> dict[str, Any]:
    """Sample ``pid`` from wall-clock ``start`` for ``seconds``; the summary, or why there is none."""
    executable = py_spy()
    if executable is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    out = log_dir / f"{name.replace(' ', '-')}.pyspy.txt"
    await asyncio.sleep(max(0.0, start - time.time()))
    process = await asyncio.create_subprocess_exec(
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "1000",
        "--threads",
        "--gil",
        "--format",
        "raw",
        *(["--native"] if native else ["--nonblocking"]),
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0 or not out.exists():
        return {"error": err.decode(errors="replace").strip()[-300:] or f"py-spy exited {process.returncode}"}
    return {"file": str(out), **summarize(out.read_text())}
