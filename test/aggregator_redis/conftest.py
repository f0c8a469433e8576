"""Fixtures: a signal-aggregator process on the Redis store."""

from __future__ import annotations

import pytest

from harness.aggregator import Aggregator


@pytest.fixture
def aggregator_factory(tmp_path):
    """Makes aggregators on Redis, restartable on the same ports and WAL."""
    started: list[Aggregator] = []

    def make(redis_url: str, *extra: str) -> Aggregator:
        aggregator = Aggregator(
            "--log-format", "text", *extra,
            redis_url=redis_url, wal_dir=tmp_path / "wal", replica_id="crash-test-0",
        )
        started.append(aggregator)
        return aggregator

    yield make
    for aggregator in started:
        aggregator.process.stop()
