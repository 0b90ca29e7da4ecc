"""/metrics of a server whose media runs on workers: the server-wide ``hearing_media_*`` series add up
the workers' figures, so that a dashboard reads the same whatever ``--media-workers`` is, and they never
go back when a worker dies and is restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hearing_pages import open_hearing, start_recording, worker_pids
from integration_harness import Clip, ServerApi, ServerProcess, free_port, stop_renders
from prometheus_client.parser import text_string_to_metric_families

from hearing_server.bootstrap import FIRST_ADMIN

pytestmark = [pytest.mark.media, pytest.mark.slow]

COUNTERS = ("packets_in", "packets_out", "plis_received", "keyframe_requests_sent")


async def scrape(api: ServerApi) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The unlabelled ``hearing_media_*`` samples, and the ``hearing_worker_*`` ones by worker."""
    async with api.http.get(f"{api.base}/metrics") as response:
        text = await response.text()
    server: dict[str, float] = {}
    workers: dict[str, dict[str, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("hearing_media_") and not sample.labels:
                server[sample.name] = sample.value
            elif sample.name.startswith("hearing_worker_") and set(sample.labels) == {"worker"}:
                workers[sample.labels["worker"]][sample.name] = sample.value
    return server, workers


def assert_sums(server: dict[str, float], workers: dict[str, dict[str, float]]) -> None:
    """Each server-wide figure is the sum of the workers' (the in-process media plane is idle)."""
    pairs = [(f"hearing_media_{name}_total", f"hearing_worker_{name}_total") for name in COUNTERS[:2]] + [
        ("hearing_media_transit_seconds_count", "hearing_worker_media_transit_seconds_count"),
        ("hearing_media_transit_seconds_sum", "hearing_worker_media_transit_seconds_sum"),
    ]
    for total, each in pairs:
        expected = sum(figures[each] for figures in workers.values())
        assert server[total] == pytest.approx(expected), (total, server[total], expected)


async def test_the_server_wide_media_series_add_up_the_workers_and_survive_a_worker_restart(
    tmp_path: Path, clips: list[Clip], loopback_ice: None
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, free_port(), env={"HEARING_MEDIA_WORKERS": "2"})
    api: ServerApi | None = None
    pages = []
    try:
        password = await server.start()
        assert password is not None
        api = ServerApi(server.base)
        await api.login(FIRST_ADMIN, password)
        await api.staff_operator()
        pids = await worker_pids(api)
        _, pages = await open_hearing(api, clips[0:2], 5)
        host = await start_recording(pages)
        await asyncio.sleep(2.5)  # a load report or two with media in them

        before, workers = await scrape(api)
        print(f"\nserver-wide: { {k: v for k, v in before.items() if k.endswith('_total')} }")
        print(f"per worker: { {w: f['hearing_worker_packets_out_total'] for w, f in workers.items()} }")
        assert sorted(workers) == ["worker-0", "worker-1"]
        assert before["hearing_media_packets_in_total"] > 200, before
        assert before["hearing_media_packets_out_total"] > 200, before
        assert before["hearing_media_transit_seconds_count"] > 200, before
        assert workers[host]["hearing_worker_packets_out_total"] > 200, workers
        assert_sums(before, workers)

        # The hosting worker dies: its figures so far stay in the server-wide series.
        os.kill(pids[host], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while (await worker_pids(api)).get(host) in (None, pids[host]):
            assert time.monotonic() < deadline, "the worker was not restarted"
            await asyncio.sleep(0.1)
        after, workers = await scrape(api)
        assert workers[host]["hearing_worker_packets_out_total"] < before["hearing_media_packets_out_total"]
        for name in COUNTERS:
            key = f"hearing_media_{name}_total"
            assert after[key] >= before[key], (key, before[key], after[key])
        assert after["hearing_media_transit_seconds_count"] >= before["hearing_media_transit_seconds_count"]
    finally:
        for page in pages:
            await page.close()
        if api is not None:
            await api.close()
        await server.stop()
        stop_renders(data_dir)
    assert not any("Traceback" in line for line in server.output), "".join(server.output)[-4000:]
