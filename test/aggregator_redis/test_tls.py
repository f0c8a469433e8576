"""signal-aggregator on a TLS-only redis-server (`rediss://`) that requires a
client certificate: the real binary, real OTLP from the opentelemetry-sdk
exporter, totals read back exactly; `/readyz` and `/metrics` report the series
Redis holds; a bad certificate flag stops the start with the flag's name."""

from __future__ import annotations

import re
import time

import requests

from aggregator.test_sdk_export import CLUSTER, MODEL, send_spans
from harness.aggregator import Aggregator
from harness.redis import RedisServer, RedisTls

TENANT = "team-tls"
KINDS = ("RequestLifecycle", "PrefixHash", "Capacity", "ColdStart", "Cost", "Reliability")


def poll(read, done, timeout: float = 30.0):
    """Reads until `done(value)` or the timeout; returns the last value read."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = read()
        except (requests.RequestException, AssertionError):
            value = None
        if value is not None and done(value):
            break
        time.sleep(0.1)
    return value


def series_gauge(metrics_text: str) -> int | None:
    match = re.search(r"^modelplane_aggregator_series (\S+)$", metrics_text, re.MULTILINE)
    return None if match is None else int(float(match.group(1)))


def test_rediss_with_a_client_certificate_keeps_sdk_exports_exactly(aggregator_factory, tmp_path):
    tls = RedisTls.generate(tmp_path / "pki", require_client_cert=True)
    with RedisServer(tls=tls) as redis:
        assert redis.url.startswith("rediss://")
        aggregator = aggregator_factory(redis.url, *tls.aggregator_args())
        aggregator.start()
        aggregator.wait_ready()

        books = send_spans("grpc", aggregator, TENANT, count=300, seed=7, style="gateway")
        # Queries read Redis, so the numbers appear once the flush landed there.
        group = poll(lambda: aggregator.group(TENANT, "RequestLifecycle", CLUSTER, MODEL),
                     lambda g: g["requests"] == books.requests)
        assert group is not None, aggregator.process.log_text()[-2000:]
        assert group["requests"] == books.requests
        assert group["errors"] == books.errors
        assert group["input_tokens"] == books.input_tokens
        assert group["output_tokens"] == books.output_tokens
        assert group["ttft_seconds"]["count"] == len(books.ttft)

        # What Redis itself holds (read over TLS with redis-cli) is what the
        # aggregator reports, on /readyz and as the /metrics gauge.
        held = sum(int(redis.cli("SCARD", f"sig:{{{TENANT}}}:series:{kind}")) for kind in KINDS)
        assert held >= 2, "RequestLifecycle and PrefixHash series"
        body = poll(lambda: aggregator.readyz()[1], lambda b: b["store"]["series"] == held)
        assert body["store"]["series"] == held, body
        assert body["store"]["ready"] is True
        assert series_gauge(aggregator.metrics()) == held
        assert "signal_aggregator_redis_up 1" in aggregator.metrics()


def test_a_bad_certificate_flag_stops_the_start_naming_it(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    aggregator = Aggregator("--redis-ca-file", str(not_pem),
                            redis_url="rediss://127.0.0.1:1", wal_dir=tmp_path / "wal")
    aggregator.process.start()
    try:
        assert aggregator.process.wait(timeout=30) != 0
    finally:
        aggregator.process.stop()
    log = aggregator.process.log_text()
    assert f"--redis-ca-file {not_pem}: holds no PEM certificate" in log, log
