"""No acknowledged export is lost: SIGKILL mid-stream, and a 30 s Redis outage.

Both run the real signal-aggregator binary against a real redis-server and send
real OTLP/HTTP; totals are read back through the query API and compared with
the sender's books exactly.
"""

from __future__ import annotations

import itertools
import re
import signal
import time

import pytest
import requests

from harness.redis import RedisServer

from .otlp_client import INPUT_TOKENS_PER_SPAN, SteadySender

TENANT, CLUSTER, MODEL = "team-a", "eu-west-1", "llama-3-70b"
SPANS = 20
WORKERS = 2
KILLS = 2


def totals(groups: list[dict]) -> tuple[int, int, int, int]:
    """(requests, input tokens, output tokens, TTFT sketch count) of the one series."""
    assert len(groups) == 1, groups
    g = groups[0]
    return (
        round(g["requests"]),
        round(g["input_tokens"]),
        round(g["output_tokens"]),
        int(g["ttft_seconds"]["count"]),
    )


def expected(requests_: int, spans: int, output_tokens: int) -> tuple[int, int, int, int]:
    return (spans, spans * INPUT_TOKENS_PER_SPAN, output_tokens, spans)


def settled_totals(aggregator, want, timeout: float = 30.0):
    """Polls until the totals equal `want` or stop changing; returns the last."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = totals(aggregator.lifecycle(TENANT))
        except (requests.RequestException, AssertionError):
            last = None
        if last == want:
            return last
        time.sleep(0.25)
    return last


def test_sigkill_mid_stream_loses_no_acknowledged_export(aggregator_factory):
    with RedisServer() as redis:
        aggregator = aggregator_factory(redis.url, "--redis-flush-interval", "200ms").start()
        aggregator.wait_ready()
        sender = SteadySender(aggregator.otlp_http, TENANT, CLUSTER, MODEL, spans=SPANS, workers=WORKERS).start()
        for _ in range(KILLS):
            time.sleep(3)
            aggregator.process.kill(signal.SIGKILL)
            assert aggregator.process.wait(timeout=10) == -signal.SIGKILL
            time.sleep(0.5)
            aggregator.start()
            aggregator.wait_ready()
        time.sleep(2)
        books = sender.stop()

        assert not books.other_failures, books.other_failures
        assert books.acked_requests > 20, books
        acked = expected(books.acked_requests, books.acked_spans, books.acked_output_tokens)
        got = settled_totals(aggregator, acked)
        if got != acked:
            # A request whose fsync finished just before a kill is in the store
            # although its response never left: at most one per sender worker
            # per kill. The extra must be exactly such a set of requests the
            # sender saw cut, identified by their token counts (seq x spans).
            extra_spans = got[0] - acked[0]
            extra_tokens = got[2] - acked[2]
            assert extra_spans > 0 and extra_spans % SPANS == 0, f"store {got} != acknowledged {acked}"
            extra_requests = extra_spans // SPANS
            assert extra_requests <= WORKERS * KILLS, f"store {got} != acknowledged {acked}"
            assert any(
                sum(seq * SPANS for seq in cut) == extra_tokens
                for cut in itertools.combinations(sorted(books.in_doubt), extra_requests)
            ), f"store {got} != acknowledged {acked}; in doubt: {books.in_doubt}"
            assert got == (
                acked[0] + extra_spans,
                acked[1] + extra_spans * INPUT_TOKENS_PER_SPAN,
                acked[2] + extra_tokens,
                acked[3] + extra_spans,
            )


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def test_thirty_second_redis_outage_buffers_refuses_and_catches_up(aggregator_factory):
    with RedisServer(appendonly=True) as redis:
        aggregator = aggregator_factory(
            redis.url,
            "--redis-flush-interval", "200ms",
            # Small enough that 30 s of this load fills it, so refusal is exercised.
            "--redis-buffer-bytes", str(128 << 10),
        ).start()
        aggregator.wait_ready()
        sender = SteadySender(aggregator.otlp_http, TENANT, CLUSTER, MODEL, spans=SPANS, workers=2).start()
        time.sleep(2)

        redis.stop()
        outage_started = time.monotonic()
        saw_not_ready = saw_metric_down = False
        metrics_failures: list[str] = []
        while time.monotonic() - outage_started < 30:
            status, body = aggregator.readyz()
            if status == 503 and "redis unreachable" in body["store"]["detail"]:
                saw_not_ready = True
            scrape = requests.get(f"{aggregator.api}/metrics", timeout=10)
            if scrape.status_code == 200 and metric(scrape.text, "signal_aggregator_redis_up") == 0:
                saw_metric_down = True
            elif scrape.status_code != 200:
                metrics_failures.append(scrape.text[:200])
            time.sleep(1)
        refused_during_outage = sender.books.refused_retryable
        redis.start()

        aggregator.wait_ready(timeout=60)
        time.sleep(2)
        books = sender.stop()

        assert saw_not_ready, "/readyz never reported the outage"
        assert refused_during_outage > 0, f"the outage buffer never filled: {books}"
        assert books.retry_after_seen == books.refused_retryable, "every refusal says when to retry"
        assert not books.in_doubt and not books.other_failures, books
        acked = expected(books.acked_requests, books.acked_spans, books.acked_output_tokens)
        assert settled_totals(aggregator, acked, timeout=60) == acked
        assert metric(aggregator.metrics(), "signal_aggregator_redis_up") == 1
        # Last, so everything above is checked even while this fails: the
        # outage must show on /metrics as a gauge, not as a failed scrape.
        assert not metrics_failures, f"/metrics failed during the outage: {metrics_failures[0]}"
        assert saw_metric_down, "/metrics never reported redis down"
