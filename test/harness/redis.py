"""Real redis-server instances for tests: one node, or a Redis Cluster of masters;
a single node may serve TLS only (`rediss://`, see `RedisTls`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import Process, ProcessError, free_port

REDIS_SERVER = "redis-server"
REDIS_CLI = "redis-cli"


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise FileNotFoundError(f"{binary} not found on PATH; test/run-all.sh installs it (apt-get install redis-server)")
    return path


@dataclass(frozen=True)
class RedisTls:
    """PEM files for a TLS-only redis-server and for its clients: a throwaway CA,
    a server certificate for 127.0.0.1 and a client certificate (mTLS when the
    server requires one)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    require_client_cert: bool = False

    @classmethod
    def generate(cls, directory: Path, require_client_cert: bool = False) -> "RedisTls":
        from function.certs import issue, make_ca

        directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca("redis-test-ca")
        files = {"ca.crt": ca.cert_pem}
        for name, server in (("server", True), ("client", False)):
            pair = issue(ca, f"redis-test-{name}", server=server)
            files[f"{name}.crt"], files[f"{name}.key"] = pair.cert_pem, pair.key_pem
        for name, pem in files.items():
            (directory / name).write_bytes(pem)
        return cls(
            ca=directory / "ca.crt",
            server_cert=directory / "server.crt",
            server_key=directory / "server.key",
            client_cert=directory / "client.crt",
            client_key=directory / "client.key",
            require_client_cert=require_client_cert,
        )

    def server_args(self, port: int) -> list[str]:
        return [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(self.server_cert),
            "--tls-key-file", str(self.server_key),
            "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "yes" if self.require_client_cert else "no",
        ]

    def cli_args(self) -> list[str]:
        return ["--tls", "--cacert", str(self.ca), "--cert", str(self.client_cert), "--key", str(self.client_key)]

    def aggregator_args(self) -> list[str]:
        """The signal-aggregator flags that trust this CA and present the client certificate."""
        return [
            "--redis-ca-file", str(self.ca),
            "--redis-client-cert-file", str(self.client_cert),
            "--redis-client-key-file", str(self.client_key),
        ]


def _cli(port: int, *args: str, timeout: float = 10.0, connection: tuple[str, ...] = ()) -> str:
    result = subprocess.run(
        [_require(REDIS_CLI), "-h", "127.0.0.1", "-p", str(port), *connection, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise ProcessError(f"redis-cli -p {port} {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout.strip()


class _Node:
    """One redis-server process with its own data directory."""

    def __init__(self, workdir: Path, extra_args: list[str], name: str, tls: RedisTls | None = None) -> None:
        self.port = free_port()
        self.dir = workdir / str(self.port)
        self.dir.mkdir(parents=True)
        self.connection = tuple(tls.cli_args()) if tls else ()
        argv = [
            _require(REDIS_SERVER),
            "--bind", "127.0.0.1",
            *(tls.server_args(self.port) if tls else ["--port", str(self.port)]),
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            *extra_args,
        ]
        self.process = Process(argv, name=f"{name}-{self.port}")

    def start(self) -> None:
        self.process.start()
        self.process.wait_for_port(self.port, timeout=15)
        deadline = time.monotonic() + 10
        while _cli(self.port, "PING", connection=self.connection) != "PONG":
            if time.monotonic() > deadline:
                raise ProcessError(f"redis on {self.port} never answered PING")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.stop()


class RedisServer:
    """A single redis-server on a free loopback port.

    `stop()` then `start()` restarts it on the same port and directory; pass
    `appendonly=True` to test that acknowledged writes survive a restart, and
    `tls` to serve only TLS (`.url` is then `rediss://`).
    """

    def __init__(self, appendonly: bool = False, tls: RedisTls | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="redis-")
        extra = ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else []
        self._node = _Node(Path(self._tmp.name), extra, "redis", tls)
        self.port = self._node.port
        self.url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self._node.start()
        return self

    def stop(self) -> None:
        self._node.stop()

    def cli(self, *args: str) -> str:
        return _cli(self.port, *args, connection=self._node.connection)

    def log_text(self) -> str:
        return self._node.process.log_text()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()


class RedisCluster:
    """A Redis Cluster of `masters` master nodes (no replicas) on loopback.

    Built with `redis-cli --cluster create --cluster-yes`; each node has its own
    directory (and nodes.conf) under one temp dir removed on exit. `.url` points
    at the first node; `.startup_nodes` lists every node for cluster clients.
    """

    def __init__(self, masters: int = 3) -> None:
        if masters < 3:
            raise ValueError("Redis Cluster needs at least 3 masters")
        self._tmp = tempfile.TemporaryDirectory(prefix="redis-cluster-")
        workdir = Path(self._tmp.name)
        # The cluster bus port defaults to port+10000, which may be taken or out
        # of range for a kernel-chosen port, so each node gets its own free one.
        self.nodes = [
            _Node(
                workdir,
                [
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "5000",
                    "--cluster-port", str(free_port()),
                ],
                "redis-cluster",
            )
            for _ in range(masters)
        ]
        self.ports = [n.port for n in self.nodes]
        self.startup_nodes = [("127.0.0.1", p) for p in self.ports]
        self.url = f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> "RedisCluster":
        try:
            for node in self.nodes:
                node.start()
            if _cli(self.ports[0], "CLUSTER", "INFO").find("cluster_state:ok") < 0:
                addresses = [f"127.0.0.1:{p}" for p in self.ports]
                _cli(self.ports[0], "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes", timeout=60)
            self._wait_until_ok()
        except Exception:
            self.stop()
            raise
        return self

    def _wait_until_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in _cli(p, "CLUSTER", "INFO") for p in self.ports):
                return
            time.sleep(0.1)
        raise ProcessError(f"redis cluster on {self.ports} did not reach cluster_state:ok within {timeout}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cli(self, *args: str) -> str:
        """redis-cli in cluster mode (-c follows MOVED) against the first node."""
        return _cli(self.ports[0], "-c", *args)

    def __enter__(self) -> "RedisCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()
