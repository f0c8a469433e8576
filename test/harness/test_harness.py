"""Self-tests of the test harness: real processes, real redis-server."""

import signal
import sys

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

from harness.procs import Process, ProcessError, free_port, port_open
from harness.redis import RedisCluster, RedisServer


def test_free_port_is_bindable_and_distinct():
    ports = {free_port() for _ in range(5)}
    assert len(ports) >= 4
    assert all(1024 < p < 65536 for p in ports)


def test_process_waits_for_port_and_stops():
    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with Process(server, name="http-server") as proc:
        proc.wait_for_port(port, timeout=15)
        assert port_open(port)
        assert proc.returncode is None
    assert not port_open(port)
    assert proc.returncode is not None


def test_process_captures_output_and_exit_status():
    code = "import sys; print('hello-out'); print('hello-err', file=sys.stderr); sys.exit(3)"
    with Process([sys.executable, "-c", code], name="printer") as proc:
        assert proc.wait(timeout=15) == 3
    assert "hello-out" in proc.log_text()
    assert "hello-err" in proc.log_text()


def test_wait_for_port_reports_early_exit_with_log():
    code = "print('cannot start: bad flag'); raise SystemExit(2)"
    with Process([sys.executable, "-c", code], name="quitter") as proc:
        with pytest.raises(ProcessError, match="cannot start: bad flag"):
            proc.wait_for_port(free_port(), timeout=15)


def test_kill_delivers_the_signal():
    with Process([sys.executable, "-c", "import time; time.sleep(60)"], name="sleeper") as proc:
        proc.kill(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL


def test_redis_server_set_get_and_restart_keeps_appendonly_data():
    with RedisServer(appendonly=True) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.set("harness:key", "value-1")
        assert client.get("harness:key") == b"value-1"
        server.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url).ping()
        server.start()
        assert redis.Redis.from_url(server.url).get("harness:key") == b"value-1"


def test_redis_cluster_spreads_keys_and_client_follows_moved():
    with RedisCluster(masters=3) as cluster:
        assert len(set(cluster.ports)) == 3
        client = ClusterClient(host="127.0.0.1", port=cluster.ports[0])
        keys = [f"harness:{i}" for i in range(60)]
        for i, key in enumerate(keys):
            client.set(key, str(i))
        assert [client.get(k) for k in keys] == [str(i).encode() for i in range(60)]

        # Each master holds some of the keys: a plain (non-cluster) client
        # on one node gets MOVED for keys it does not own.
        owners = {}
        for port in cluster.ports:
            owners[port] = int(redis.Redis(port=port).dbsize())
        assert sum(owners.values()) == 60
        assert all(count > 0 for count in owners.values()), owners
        single = redis.Redis(port=cluster.ports[0])
        local, moved = 0, 0
        for key in keys:
            try:
                single.get(key)
                local += 1
            except redis.exceptions.MovedError:
                moved += 1
        assert local == owners[cluster.ports[0]]
        assert moved == 60 - local
        # redis-cli in cluster mode follows the redirect too.
        assert cluster.cli("GET", keys[0]) == "0"

        # Keys sharing a hash tag land in one slot, so multi-key commands work.
        client.mset_nonatomic({"{tenant-a}:x": "1", "{tenant-a}:y": "2"})
        assert client.keyslot("{tenant-a}:x") == client.keyslot("{tenant-a}:y")
        assert client.get("{tenant-a}:y") == b"2"
