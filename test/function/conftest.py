import copy

import pytest

from .fnclient import FIXTURES, FunctionServer, load_one


@pytest.fixture(scope="session")
def server():
    """One insecure function-signals for the read-only protocol tests."""
    with FunctionServer() as srv:
        yield srv


@pytest.fixture
def full_cluster():
    """Every signal kind, a ProviderConfig in status (multi-cluster ready)."""
    return copy.deepcopy(load_one(FIXTURES / "inferencecluster-full.yaml"))


@pytest.fixture
def traces_service():
    return copy.deepcopy(load_one(FIXTURES / "modelservice-traces.yaml"))
