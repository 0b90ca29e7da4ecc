"""The benchmark report's capacity table: one row per search, the load generator's share beside (fast)."""

from __future__ import annotations

from typing import Any

from benchmarks import report


def search(workers: int, held: int) -> dict[str, Any]:
    steps = [
        {"hearings": h, "name": f"forwarding {h}x4 rec", "passed": h <= held, "fps_min": 30.0 - h,
         "server_cores": 0.4 * h, "generator_cores": 0.3 * h}
        for h in range(1, held + 2)
    ]  # fmt: skip
    return {
        "server": "forwarding", "media_workers": workers, "hearings": held, "participants": 4,
        "min_fps": 29.0, "max_loss_pct": 1.0, "searched_up_to": 8, "steps": steps,
        "stopped_because": f"{held + 1} hearing(s) failed",
    }  # fmt: skip


def test_each_worker_count_has_a_row_with_the_figures_of_its_most_hearings_held() -> None:
    run = {"capacity": {**search(0, 2), "by_workers": [search(2, 3)], "janus": None}, "machine": {"cpus": 2}}
    rows = report.capacity_rows(run, 2)
    assert rows == [
        ["ours, 4-party rec", "2", "0.80", "0.60", "30 %", "28.0", "3 hearing(s) failed"],
        ["ours, 2 media workers, 4-party rec", "3", "1.20", "0.90", "45 %", "27.0", "4 hearing(s) failed"],
    ]
    table = report.capacity_table(run).splitlines()
    assert table[0].startswith("capacity search") and len(table) == 3
    lines = report.summary_lines({**run, "load_start": [1.0] * 3, "load_end": [1.0] * 3, "elapsed_s": 60})
    assert lines[1].startswith("Capacity (ours, 2 media workers): 3 concurrent 4-participant")
    assert lines[1].endswith("the load generator used 0.90 cores there.")


def test_a_search_that_held_nothing_shows_its_first_step() -> None:
    run = {"capacity": {**search(1, 0), "by_workers": []}, "machine": {"cpus": 2}}
    [row] = report.capacity_rows(run, 2)
    assert row[:3] == ["ours, 1 media worker, 4-party rec", "0", "0.40"]


def test_with_repeated_sizes_each_janus_row_pairs_with_our_row_run_just_before_it() -> None:
    from benchmarks.run import janus_ratios

    def row(server: str, n: int, us: float) -> dict[str, Any]:
        scenario = {"server": server, "hearings": 1, "participants": n, "recording": True, "uvloop": True}
        name = f"{server} 1x{n} rec"
        return {"name": name, "ok": True, "scenario": scenario, "server_cpu_us_per_packet": us}

    results = [row("forwarding", 4, 40), row("janus", 4, 20), row("forwarding", 4, 30), row("janus", 4, 30)]
    assert [r["us_per_packet_ratio"] for r in janus_ratios(results)] == [2.0, 1.0]
