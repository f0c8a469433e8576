"""The real peer programs built by test/peers/build.sh (collector, Crossplane, ...).

build.sh writes absolute paths to `peers.env` in the peer cache; this module
reads them. A missing or unbuilt peer is an error naming the command that
builds it: tests never skip because a peer is absent.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def peers_dir() -> Path:
    configured = os.environ.get("MODELPLANE_PEERS_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "modelplane-signals" / "peers"


class PeerMissing(RuntimeError):
    """A peer the test needs was not built."""


@lru_cache(maxsize=1)
def _paths() -> dict[str, str]:
    env_file = peers_dir() / "peers.env"
    if not env_file.is_file():
        raise PeerMissing(f"{env_file} does not exist: run test/peers/build.sh (test/run-all.sh does)")
    paths = {}
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            paths[key] = value
    return paths


def peer(key: str) -> Path:
    """Path of a built peer by its peers.env key (e.g. OTELCOL_BIN)."""
    paths = _paths()
    if key not in paths:
        raise PeerMissing(f"{key} is not in {peers_dir() / 'peers.env'}: rerun test/peers/build.sh")
    path = Path(paths[key])
    if not path.exists():
        raise PeerMissing(f"{key}={path} does not exist: rerun test/peers/build.sh")
    return path


def otelcol() -> Path:
    return peer("OTELCOL_BIN")


def crossplane() -> Path:
    return peer("CROSSPLANE_BIN")


def crossplane_core() -> Path:
    return peer("CROSSPLANE_CORE_BIN")


def function_auto_ready() -> Path:
    """The second real composition function for pipeline tests."""
    return peer("FUNCTION_AUTO_READY_BIN")


def function_patch_and_transform() -> Path:
    raise PeerMissing(
        "function-patch-and-transform is not served by the Go module proxy (403 on the "
        "zips of v0.7.0-v0.10.0), nor is function-go-templating; use "
        "peers.function_auto_ready() (function-auto-ready v0.7.0) as the second real function"
    )


def crane() -> Path:
    return peer("CRANE_BIN")
