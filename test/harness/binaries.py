"""Locate (and if needed build) the workspace's binaries."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_build_lock = threading.Lock()
_built: set[str] = set()


def target_dir() -> Path:
    configured = os.environ.get("CARGO_TARGET_DIR")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else REPO_ROOT / path
    return REPO_ROOT / "target"


def cargo_bin(name: str) -> Path:
    """Path of the debug build of binary `name`.

    Runs `cargo build --bin name` once per test session (cargo is a no-op when
    it is up to date), so a test never runs a stale binary after a source edit.
    Set MODELPLANE_TEST_NO_BUILD=1 to skip the build and use what is there.
    """
    path = target_dir() / "debug" / name
    with _build_lock:
        if name not in _built and not os.environ.get("MODELPLANE_TEST_NO_BUILD"):
            result = subprocess.run(
                ["cargo", "build", "--quiet", "--bin", name],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"cargo build --bin {name} failed:\n{result.stderr[-4000:]}")
            _built.add(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist after building {name}")
    return path
