"""The benchmark's results as a table (stdout), JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS: list[tuple[str, str, str]] = [
    # (header, key, format)
    ("scenario", "name", "{}"),
    ("srv cores", "server_pid_cores", "{:.2f}"),
    ("srv wait", "server_wait_cores", "{:.2f}"),
    ("RSS MB", "server_rss_mb", "{:.0f}"),
    ("pkt/s fwd", "packets_forwarded_per_s", "{:.0f}"),
    ("µs/pkt", "server_cpu_us_per_packet", "{:.0f}"),
    ("fps min", "fps_min", "{:.1f}"),
    ("fps med", "fps_median", "{:.1f}"),
    ("loss %", "loss_pct_max", "{:.2f}"),
    ("delay p50 ms", "delay_ms_p50", "{:.0f}"),
    ("delay p99 ms", "delay_ms_p99", "{:.0f}"),
    ("transit p50/p99 ms", "transit", "{}"),
    ("join s", "join_s_median", "{:.2f}"),
    ("kf wait ms", "keyframe_wait_ms_median", "{:.0f}"),
    ("drops srv", "udp_drops_at_server", "{}"),
    ("drops parties", "udp_drops_at_parties", "{}"),
    ("rec MB", "recorded_mb", "{:.1f}"),
    ("gen cores", "generator_cores", "{:.2f}"),
    ("ok", "passed", "{}"),
]


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    if key == "transit":
        p50, p99 = result.get("transit_ms_p50"), result.get("transit_ms_p99")
        return "–" if p50 is None or p99 is None else f"{p50:g} / {p99:g}"
    value = result.get(key)
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt.format(value)


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row of cells per scenario (a failed scenario shows its error)."""
    table = []
    for result in results:
        if not result.get("ok"):
            table.append([result["name"], f"failed: {result.get('error', '?')}"[:90]])
        else:
            table.append([_cell(result, key, fmt) for _, key, fmt in COLUMNS])
    return table


def text_table(results: list[dict[str, Any]]) -> str:
    """A fixed-width table for the terminal."""
    headers = [header for header, _, _ in COLUMNS]
    body = rows(results)
    widths = [max(len(headers[i]), *(len(r[i]) for r in body if len(r) > i)) for i in range(len(headers))]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for row in body:
        if len(row) < len(headers):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append(
                "  ".join(
                    c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
    return "\n".join(lines)


def markdown_table(results: list[dict[str, Any]]) -> str:
    headers = [header for header, _, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows(results):
        cells = row if len(row) == len(headers) else [row[0], row[1], *[""] * (len(headers) - 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CAPACITY_HEADERS = [
    "capacity search", "hearings held", "srv cores", "gen cores", "gen share", "fps min", "stopped because",
]  # fmt: skip


def capacity_searches(run: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every capacity search of the run with who ran it: ours per media worker count, then Janus."""
    capacity = run.get("capacity")
    if capacity is None:
        return []
    ours = [capacity, *capacity.get("by_workers", [])]
    found = [(search, _who(search)) for search in ours]
    if capacity.get("janus") is not None:
        found.append((capacity["janus"], "Janus"))
    return found


def _who(search: dict[str, Any]) -> str:
    workers = search.get("media_workers") or 0
    return f"ours, {workers} media worker{'s' if workers > 1 else ''}" if workers else "ours"


def _held_step(search: dict[str, Any]) -> dict[str, Any]:
    """The step of the most hearings held (else the first step tried)."""
    steps = search.get("steps", [])
    held = [step for step in steps if step["passed"] and step["hearings"] == search["hearings"]]
    return held[-1] if held else (steps[0] if steps else {})


def capacity_rows(run: dict[str, Any], cpus: int) -> list[list[str]]:
    """One row per capacity search: the most hearings held and, at that load, the server's and the load
    generator's CPU (the generator shares the machine: its share of all ``cpus`` cores)."""
    rows = []
    for search, who in capacity_searches(run):
        step = _held_step(search)
        server, generator = step.get("server_cores"), step.get("generator_cores")
        rows.append(
            [
                f"{who}, {search['participants']}-party rec",
                str(search["hearings"]),
                _cell(step, "server_cores", "{:.2f}"),
                _cell(step, "generator_cores", "{:.2f}"),
                "–" if generator is None or server is None else f"{100 * generator / cpus:.0f} %",
                _cell(step, "fps_min", "{:.1f}"),
                search["stopped_because"],
            ]
        )
    return rows


def capacity_table(run: dict[str, Any]) -> str:
    """The capacity searches as a fixed-width table for the terminal."""
    body = capacity_rows(run, run["machine"]["cpus"] or 1)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(CAPACITY_HEADERS)]
    lines = []
    for row in [CAPACITY_HEADERS, *body]:
        cells = enumerate(zip(row, widths, strict=True))
        lines.append("  ".join(c.rjust(w) if 0 < i < len(row) - 1 else c.ljust(w) for i, (c, w) in cells))
    return "\n".join(line.rstrip() for line in lines)


def summary_lines(run: dict[str, Any]) -> list[str]:
    """Capacity, forwarding-vs-relay ratios and the machine's load, as sentences."""
    lines = []
    for found, who in capacity_searches(run):
        step = _held_step(found)
        generator = step.get("generator_cores")
        lines.append(
            f"Capacity ({who}): {found['hearings']} concurrent {found['participants']}-participant "
            f"recorded hearing(s) with every subscriber ≥ {found['min_fps']:g} fps and "
            f"< {found['max_loss_pct']:g} % loss "
            f"(searched up to {found['searched_up_to']}; {found['stopped_because']})"
            + ("." if generator is None else f"; the load generator used {generator:.2f} cores there.")
        )
    for ratio in run.get("janus_ratios", []):
        per_packet = f"{ratio['us_per_packet_ratio']:.2f}×" if ratio.get("us_per_packet_ratio") else "–"
        ours, janus = ratio.get("ours_us_per_packet"), ratio.get("janus_us_per_packet")
        lines.append(
            f"Ours vs Janus, {ratio['hearings']}x{ratio['participants']} recorded: server CPU per forwarded "
            f"packet {_us(ours)} vs {_us(janus)} ({per_packet} Janus's)."
        )
    for ratio in run.get("relay_ratios", []):
        cpu = f"{ratio['cpu_ratio']:.1f}×" if ratio.get("cpu_ratio") else "–"
        per_packet = f"{ratio['us_per_packet_ratio']:.1f}×" if ratio.get("us_per_packet_ratio") else "–"
        lines.append(
            f"Relay vs forwarding, {ratio['participants']} participants (no recording): server CPU {cpu}, "
            f"CPU per delivered packet {per_packet}; "
            f"min fps {ratio['relay_fps_min']} vs {ratio['forwarding_fps_min']}."
        )
    machine = run["machine"]
    pinning = machine.get("pinning")
    pinned = (
        f"server on CPU {pinning['server']}, load on CPU {pinning['generator']}" if pinning else "not pinned"
    )
    lines.append(
        f"Machine: {machine['cpus']} cores ({pinned}); load average {_load(run['load_start'])} at start, "
        f"{_load(run['load_end'])} at end; run took {run['elapsed_s'] / 60:.1f} min."
    )
    return lines


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} µs"


def _load(load: list[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def markdown(run: dict[str, Any]) -> str:
    """The whole report as Markdown (results/latest.md)."""
    parts = [
        "# hearing-server benchmark",
        "",
        f"Run {run['started_at']} — `{run['command']}`",
        "",
        markdown_table(run["results"]),
        "",
        *_capacity_markdown(run),
        *(f"- {line}" for line in summary_lines(run)),
        "",
        "Columns: server CPU in cores (user+system of the server process, from /proc), the time its"
        " threads were runnable but waited for a CPU (thread-seconds per second: other work on its"
        " CPU), its peak RSS,"
        " RTP packets the server sent to subscribers per second, server CPU per such packet, the lowest"
        " and median frame rate a subscriber received from one publisher's video, the worst subscriber's"
        " RTP loss, forwarding delay (publisher sends a frame's last packet → subscriber receives it),"
        " the server's own transit histogram (datagram in → datagram out, /metrics, when it has one),"
        " join time (join sent → first remote keyframe, late joiner), keyframe wait (late joiner's"
        " subscribe connection up → first keyframe of each remote video), UDP datagrams the kernel dropped"
        " for full receive buffers during the window on the server's and on the parties' sockets (a"
        " process that did not get the CPU in time), the"
        " load generator's CPU (its processes and this one); ok = every subscriber ≥ 29 fps and < 1 % loss.",
        "",
    ]
    notes = [
        f"- {r['name']}: {'; '.join(r['notes'] + r.get('errors', []))}"
        for r in run["results"]
        if r.get("notes") or r.get("errors")
    ]
    if notes:
        parts += ["Notes:", *notes, ""]
    profiles = profile_lines(run["results"])
    if profiles:
        parts += ["Profiles (py-spy, share of the server's samples):", *profiles, ""]
    return "\n".join(parts)


def profile_lines(results: list[dict[str, Any]]) -> list[str]:
    """One line per profiled scenario: thread shares, then the functions with the most self time."""
    lines = []
    for result in results:
        profile = result.get("profile")
        if not profile:
            continue
        if "error" in profile:
            lines.append(f"- {result['name']}: no profile ({profile['error']})")
            continue
        threads = ", ".join(f"{name} {pct} %" for name, pct in profile["threads_pct"].items())
        functions = ", ".join(f"{name} {pct} %" for name, pct in profile["self_pct"])
        lines.append(f"- {result['name']} ({profile['samples']} samples; {threads}): {functions}")
    return lines


def _capacity_markdown(run: dict[str, Any]) -> list[str]:
    rows = capacity_rows(run, run["machine"]["cpus"] or 1)
    if not rows:
        return []
    rule = ["---"] * len(CAPACITY_HEADERS)
    lines = ["| " + " | ".join(row) + " |" for row in [CAPACITY_HEADERS, rule, *rows]]
    return [*lines, ""]


def write(run: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` (via temporary files, so a partial write never shows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (
        ("latest.json", json.dumps(run, indent=1, ensure_ascii=False) + "\n"),
        ("latest.md", markdown(run)),
    ):
        path = out_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]
