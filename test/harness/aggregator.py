"""A `signal-aggregator` process on free loopback ports, for end-to-end tests
(embedded store by default, Redis with `redis_url`)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from harness.binaries import cargo_bin
from harness.procs import Process, free_port


class Aggregator:
    """Restartable on the same ports (and WAL, with Redis): `process.kill()`
    then `start()` again. As a context manager it also waits for `/readyz`."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None,
                 redis_url: str | None = None, wal_dir: Path | None = None,
                 replica_id: str = "e2e-0") -> None:
        self.grpc_port, self.http_port, self.api_port = free_port(), free_port(), free_port()
        argv: list[str] = [
            str(cargo_bin("signal-aggregator")),
            "--otlp-grpc-addr", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-addr", f"127.0.0.1:{self.http_port}",
            "--api-addr", f"127.0.0.1:{self.api_port}",
        ]
        if redis_url:
            if wal_dir is None:
                raise ValueError("a Redis-backed aggregator needs a wal_dir")
            argv += ["--redis-url", redis_url, "--wal-dir", str(wal_dir), "--replica-id", replica_id]
        argv += list(extra)
        self.process = Process(argv, env=env, name="signal-aggregator")
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.otlp_http = f"http://127.0.0.1:{self.http_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"

    def start(self) -> "Aggregator":
        """Starts the process and waits for its listeners (not for readiness:
        a Redis-backed aggregator may start while Redis is down)."""
        self.process.start()
        for port in (self.grpc_port, self.http_port, self.api_port):
            self.process.wait_for_port(port, timeout=60)
        return self

    def __enter__(self) -> "Aggregator":
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"{self.api}{path}", params=params, timeout=10)

    def readyz(self) -> tuple[int, dict]:
        response = self.get("/readyz")
        return response.status_code, response.json()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.readyz()[0] != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"never ready: {self.readyz()}\n{self.process.log_text()[-3000:]}")
            time.sleep(0.1)

    def metrics(self) -> str:
        return self.get("/metrics").text

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

    def lifecycle(self, tenant: str, window: str = "15m") -> list[dict]:
        return self.signals(tenant, "RequestLifecycle", window=window)["groups"]
