"""A running signal-aggregator on free loopback ports, and the arithmetic the
end-to-end tests check its answers with (exact quantiles, Prometheus's
histogram_quantile)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import requests

from harness.binaries import cargo_bin
from harness.procs import Process, free_port

SIGNAL_KINDS = ("RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability")

# vLLM's TTFT histogram bounds (vllm/v1/metrics/buckets.py).
VLLM_TTFT_BOUNDS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)


class Aggregator:
    """`signal-aggregator` on the embedded store (or Redis with `redis_url`)."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None,
                 redis_url: str | None = None, wal_dir: Path | None = None) -> None:
        self.grpc_port, self.http_port, self.api_port = free_port(), free_port(), free_port()
        argv: list[str] = [
            str(cargo_bin("signal-aggregator")),
            "--otlp-grpc-addr", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-addr", f"127.0.0.1:{self.http_port}",
            "--api-addr", f"127.0.0.1:{self.api_port}",
        ]
        if redis_url:
            argv += ["--redis-url", redis_url, "--wal-dir", str(wal_dir), "--replica-id", "e2e-0"]
        argv += list(extra)
        self.process = Process(argv, env=env, name="signal-aggregator")
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.otlp_http = f"http://127.0.0.1:{self.http_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"

    def __enter__(self) -> "Aggregator":
        self.process.start()
        for port in (self.grpc_port, self.http_port, self.api_port):
            self.process.wait_for_port(port, timeout=60)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready: {self.get('/readyz').text}\n{self.process.log_text()[-3000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"{self.api}{path}", params=params, timeout=10)

    def signals(self, tenant: str, kind: str, window: str = "5m",
                group_by: str = "cluster,model", **filters: str) -> dict:
        """`group_by=""` asks for one group over everything that matches."""
        params = {"window": window, "groupBy": group_by, **filters}
        response = self.get(f"/v1/tenants/{tenant}/signals/{kind}", **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["kind"] == kind and body["tenant"] == tenant, body
        return body

    def group(self, tenant: str, kind: str, cluster: str, model: str) -> dict:
        """The one group of (cluster, model); fails if the tenant has other groups."""
        groups = self.signals(tenant, kind)["groups"]
        assert [(g["cluster"], g["model"]) for g in groups] == [(cluster, model)], groups
        return groups[0]


def nearest_rank_bounds(values: Sequence[float], q: float) -> tuple[float, float]:
    """The exact values one rank either side of the q-quantile: any correct
    estimator (nearest rank, interpolation) lands between them."""
    ordered = sorted(values)
    n = len(ordered)
    rank = q * (n - 1)
    low = ordered[max(0, math.floor(rank) - 1)]
    high = ordered[min(n - 1, math.ceil(rank) + 1)]
    return low, high


def assert_quantile(estimate: float | None, values: Sequence[float], q: float, rel: float = 0.01) -> None:
    assert estimate is not None, f"no p{int(q * 100)} for {len(values)} values"
    low, high = nearest_rank_bounds(values, q)
    assert low * (1 - rel) <= estimate <= high * (1 + rel), (
        f"p{q}: {estimate} outside [{low}, {high}] ±{rel:.0%} (n={len(values)})"
    )


def bucket_counts(values: Sequence[float], bounds: Sequence[float]) -> list[int]:
    """OTLP explicit buckets: bucket i holds (bounds[i-1], bounds[i]], the last is +Inf."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[next((i for i, b in enumerate(bounds) if value <= b), len(bounds))] += 1
    return counts


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """Prometheus's histogram_quantile over one histogram's buckets."""
    cumulative = []
    running = 0
    for count in counts:
        running += count
        cumulative.append(running)
    total = cumulative[-1]
    rank = q * total
    bucket = next(i for i, c in enumerate(cumulative) if c >= rank)
    if bucket == len(bounds):
        return bounds[-1]
    start = 0.0 if bucket == 0 else bounds[bucket - 1]
    end = bounds[bucket]
    below = 0 if bucket == 0 else cumulative[bucket - 1]
    in_bucket = cumulative[bucket] - below
    return start + (end - start) * ((rank - below) / in_bucket)
