import pytest

from .support import Aggregator


@pytest.fixture
def aggregator():
    """A fresh signal-aggregator on the embedded store, logging at debug."""
    with Aggregator(env={"RUST_LOG": "debug"}) as running:
        yield running
