"""Prometheus metrics of one application: request counts and latency, and gauges for live hearings."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from media.stats import TRANSIT_BUCKETS_S, MediaStats, summed


@dataclass(frozen=True)
class WorkerSample:
    """One media worker's figures at scrape time."""

    name: str
    pid: int | None
    up: bool
    hearings: int
    participants: int
    forwarded_per_s: float
    forwarded_total: int
    cpu_seconds: float
    restarts: int
    media: MediaStats


class _WorkerCollector(Collector):
    """Per-worker gauges and counters, read from the worker pool when scraped."""

    def __init__(self, source: Callable[[], list[WorkerSample]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        samples = self._source()
        families: list[tuple[type, str, str, Callable[[WorkerSample], float]]] = [
            (GaugeMetricFamily, "hearing_worker_up", "1 while the media worker runs.", lambda w: float(w.up)),
            (GaugeMetricFamily, "hearing_worker_hearings", "Hearings hosted by the media worker.",
             lambda w: w.hearings),
            (GaugeMetricFamily, "hearing_worker_participants", "Participants with media on the worker.",
             lambda w: w.participants),
            (GaugeMetricFamily, "hearing_worker_packet_rate",
             "RTP packets the worker sent to subscribers per second (last report).",
             lambda w: w.forwarded_per_s),
            (CounterMetricFamily, "hearing_worker_packets_in", "RTP packets the worker received.",
             lambda w: w.media.packets_in),
            (CounterMetricFamily, "hearing_worker_packets_out", "RTP packets the worker sent to subscribers.",
             lambda w: w.media.packets_out),
            (CounterMetricFamily, "hearing_worker_cpu_seconds", "CPU time of the worker process.",
             lambda w: w.cpu_seconds),
            (CounterMetricFamily, "hearing_worker_restarts", "Restarts of the worker slot after a crash.",
             lambda w: w.restarts),
        ]  # fmt: skip
        info = GaugeMetricFamily(
            "hearing_worker_info", "The media worker's process id.", labels=["worker", "pid"]
        )
        for sample in samples:
            info.add_metric([sample.name, str(sample.pid or "")], 1.0)
        yield info
        for family_type, name, doc, value in families:
            family = family_type(name, doc, labels=["worker"])
            for sample in samples:
                family.add_metric([sample.name], value(sample))
            yield family
        transit = HistogramMetricFamily(
            "hearing_worker_media_transit_seconds",
            "Transit time of RTP packets forwarded by the worker: datagram in to the last datagram out.",
            labels=["worker"],
        )
        for sample in samples:
            transit.add_metric([sample.name], _buckets(sample.media), sample.media.transit_sum_ns / 1e9)
        yield transit


def _buckets(stats: MediaStats) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets of a transit histogram."""
    cumulative, buckets = 0, []
    for bound, count in zip((*TRANSIT_BUCKETS_S, float("inf")), stats.transit_buckets, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    return buckets


class Metrics:
    """The application's own registry (no process-global default registry)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hearing_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hearing_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.refused_guesses = Counter(
            "hearing_invitation_guesses_refused",
            "Unusable invitation links refused as guessing, by the limit that refused them.",
            ["scope"],
            registry=self.registry,
        )
        # The live room sets these (``set`` or ``set_function``); the API never does.
        self.live_hearings = Gauge(
            "hearing_live_hearings",
            "Hearings whose waiting room is open or that are in session.",
            registry=self.registry,
        )
        self.live_participants = Gauge(
            "hearing_live_participants", "Participants connected to live hearings.", registry=self.registry
        )

        self.cluster_refusals = Counter(
            "hearing_cluster_refusals",
            "Hearings refused because every node of the cluster hosted its capacity.",
            registry=self.registry,
        )
        self.cluster_reaped = Counter(
            "hearing_cluster_reaped",
            "Hearings of dead nodes this node marked interrupted.",
            registry=self.registry,
        )
        self._media: _MediaCollector | None = None  # registered by the first watch_media

    def watch_workers(self, source: Callable[[], list[WorkerSample]]) -> None:
        """Export the media workers' figures, read from ``source`` at each scrape."""
        self.registry.register(_WorkerCollector(source))

    def watch_media(self, stats: MediaStats | Callable[[], MediaStats]) -> None:
        """Add media figures to the server-wide counters and packet transit histogram (read at each scrape).

        Every source counts: this process's media plane and the media workers' totals add up.
        """
        if self._media is None:
            self._media = _MediaCollector()
            self.registry.register(self._media)
        self._media.sources.append(stats if callable(stats) else lambda: stats)

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class _MediaCollector(Collector):
    """Sums the media figures of its sources when /metrics is scraped (the media plane keeps plain ints)."""

    def __init__(self) -> None:
        self.sources: list[Callable[[], MediaStats]] = []

    def collect(self) -> list[Metric]:
        stats = summed(source() for source in self.sources)
        transit = HistogramMetricFamily(
            "hearing_media_transit_seconds",
            "Server transit time of forwarded RTP packets: datagram in to the last datagram out.",
            buckets=_buckets(stats),
            sum_value=stats.transit_sum_ns / 1e9,
        )
        metrics: list[Metric] = [transit]
        for name, value in stats.counters().items():
            metrics.append(
                CounterMetricFamily(f"hearing_media_{name}", f"Media plane: {name.replace('_', ' ')}.", value)
            )
        return metrics


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count every request and time it (WebSocket sessions are counted, not timed)."""
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        if status != 101:
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


METRICS = web.AppKey("metrics", Metrics)
