"""Prometheus metrics of one application: request counts and latency, and gauges for live hearings."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from media.stats import TRANSIT_BUCKETS_S, MediaStats


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

    def watch_media(self, stats: MediaStats) -> None:
        """Expose the media plane's counters and packet transit histogram (read at each scrape)."""
        self.registry.register(_MediaCollector(stats))

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class _MediaCollector(Collector):
    """Reads :class:`media.stats.MediaStats` when /metrics is scraped (the media plane keeps plain ints)."""

    def __init__(self, stats: MediaStats) -> None:
        self._stats = stats

    def collect(self) -> list[Metric]:
        stats = self._stats
        cumulative, buckets = 0, []
        for bound, count in zip((*TRANSIT_BUCKETS_S, float("inf")), stats.transit_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        transit = HistogramMetricFamily(
            "hearing_media_transit_seconds",
            "Server transit time of forwarded RTP packets: datagram in to the last datagram out.",
            buckets=buckets,
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
