"""The arithmetic the end-to-end tests check the aggregator's answers with
(exact quantiles, Prometheus's histogram_quantile); the process itself is
`harness.aggregator.Aggregator`."""

from __future__ import annotations

import math
from typing import Sequence

from harness.aggregator import Aggregator  # noqa: F401  (re-exported for the tests)

SIGNAL_KINDS = ("RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability")

# vLLM's TTFT histogram bounds (vllm/v1/metrics/buckets.py).
VLLM_TTFT_BOUNDS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)


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
