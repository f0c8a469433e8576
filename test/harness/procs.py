"""Start, watch and stop real processes for black-box tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0), so parallel tests rarely collide; a
    process that fails to bind shows up as a wait_for_port timeout with its log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class ProcessError(RuntimeError):
    """A managed process misbehaved; the message carries the tail of its log."""


class Process:
    """A child process whose stdout and stderr go to a temp log file.

    Use as a context manager: the process is started on enter and stopped
    (SIGTERM, then SIGKILL) on exit, so a failing test never leaks it.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.env = dict(os.environ, **env) if env else None
        self.cwd = cwd
        self._log = tempfile.NamedTemporaryFile(prefix=f"{self.name}-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        if self._proc is not None and self._proc.poll() is None:
            raise ProcessError(f"{self.name} is already running")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        return self

    def __enter__(self) -> "Process":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ProcessError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit status, or None while running (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def failure(self, what: str) -> ProcessError:
        tail = "\n".join(self.log_text().splitlines()[-40:])
        return ProcessError(f"{self.name} {what} (argv: {' '.join(self.argv)})\n--- log tail ---\n{tail}")

    def wait_for_port(self, port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
        """Block until `port` accepts TCP connections; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise self.failure(f"exited with status {self.returncode} before listening on {host}:{port}")
            if port_open(port, host):
                return
            time.sleep(0.05)
        raise self.failure(f"did not listen on {host}:{port} within {timeout}s")

    def wait_for_log(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.running():
                raise self.failure(f"exited with status {self.returncode} before logging {needle!r}")
            time.sleep(0.05)
        raise self.failure(f"did not log {needle!r} within {timeout}s")

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit on its own and return its status."""
        if self._proc is None:
            raise ProcessError(f"{self.name} was never started")
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self.failure(f"still running after {timeout}s") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process (not its group: we only signal what we started)."""
        if self.running():
            assert self._proc is not None
            self._proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=timeout)
        return self._proc.returncode

    def restart(self) -> "Process":
        self.stop()
        return self.start()
