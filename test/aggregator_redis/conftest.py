"""Fixtures: a signal-aggregator process on the Redis store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from harness.binaries import cargo_bin
from harness.procs import Process, free_port


class Aggregator:
    """signal-aggregator with `--redis-url`, restartable on the same ports and WAL."""

    def __init__(self, redis_url: str, wal_dir: Path, *extra: str) -> None:
        self.grpc, self.http, self.api = free_port(), free_port(), free_port()
        self.wal_dir = wal_dir
        argv = [
            cargo_bin("signal-aggregator"),
            "--otlp-grpc-addr", f"127.0.0.1:{self.grpc}",
            "--otlp-http-addr", f"127.0.0.1:{self.http}",
            "--api-addr", f"127.0.0.1:{self.api}",
            "--redis-url", redis_url,
            "--wal-dir", str(wal_dir),
            "--replica-id", "crash-test-0",
            "--log-format", "text",
            *extra,
        ]
        self.process = Process(argv, name="signal-aggregator")
        self.otlp_http = f"http://127.0.0.1:{self.http}"
        self.api_url = f"http://127.0.0.1:{self.api}"

    def start(self) -> "Aggregator":
        self.process.start()
        self.process.wait_for_port(self.http, timeout=60)
        self.process.wait_for_port(self.api, timeout=60)
        return self

    def readyz(self) -> tuple[int, dict]:
        response = requests.get(f"{self.api_url}/readyz", timeout=5)
        return response.status_code, response.json()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.readyz()[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"never ready: {self.readyz()}\n{self.process.log_text()[-3000:]}")

    def metrics(self) -> str:
        return requests.get(f"{self.api_url}/metrics", timeout=10).text

    def lifecycle(self, tenant: str, window: str = "15m") -> list[dict]:
        response = requests.get(
            f"{self.api_url}/v1/tenants/{tenant}/signals/RequestLifecycle",
            params={"window": window, "groupBy": "cluster,model"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["groups"]


@pytest.fixture
def aggregator_factory(tmp_path):
    started: list[Aggregator] = []

    def make(redis_url: str, *extra: str) -> Aggregator:
        aggregator = Aggregator(redis_url, tmp_path / "wal", *extra)
        started.append(aggregator)
        return aggregator

    yield make
    for aggregator in started:
        aggregator.process.stop()
