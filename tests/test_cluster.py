"""A fleet through a Redis Cluster (``redis+cluster://``): three masters this test starts and
joins, on free ports, stopped by their PIDs."""

import random
import shutil
import socket
import subprocess
import time
from collections import Counter

import pytest

from .e2e import Farm, ProxySpec, crawl_together, pages, valid

redis = pytest.importorskip("redis", reason="the shared store needs the redis extra")
SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(not SERVER, reason="needs redis-server (Debian's redis)")


def free_ports(n):
    """``n`` ports free with their cluster bus ports (each plus 10,000, so below 55,536)."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(20_000, 30_000)
        if port not in ports and all(free(p) for p in (port, port + 10_000)):
            ports.append(port)
    return ports


def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def cluster(tmp_path):
    """Three cluster-enabled redis-servers, joined (every slot covered): their ports."""
    ports = free_ports(3)
    servers = []
    for port in ports:
        folder = tmp_path / f"node-{port}"
        folder.mkdir()
        servers.append(subprocess.Popen(
            [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file",
             str(folder / "nodes.conf"), "--dir", str(folder), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for port in ports:
            wait_for(lambda p=port: redis.Redis(port=p).ping())
        # what `redis-cli --cluster create` does, without its one-second pauses: a third of the
        # slots each, then every node meets the first
        nodes = [redis.Redis(port=p) for p in ports]
        for i, node in enumerate(nodes):
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", i * 16384 // 3, (i + 1) * 16384 // 3 - 1)
        for node in nodes[1:]:
            node.execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0])
        wait_for(lambda: all(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == 3
                             for info in (n.cluster("info") for n in nodes)), seconds=60)
        yield ports
    finally:
        for server in servers:  # by the PIDs this test started
            server.terminate()
        for server in servers:
            server.wait(timeout=10)


def wait_for(ready, seconds=15.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not come up")
        time.sleep(0.05)


def test_a_fleet_through_a_redis_cluster_gets_every_page_with_the_limits_held(tmp_path, cluster):
    specs = [ProxySpec(f"p{i}") for i in range(4)]
    jobs = [pages("shop-a.test", 16, start=1 + 16 * i) + pages("shop-b.test", 16, start=1 + 16 * i) for i in range(2)]
    url = f"redis+cluster://127.0.0.1:{cluster[1]}"  # any node: the client finds the others
    with Farm(specs, site_interval=0.3, site_retry_after=5) as farm:
        results = crawl_together(tmp_path, farm, jobs, PROXY_STATE_URL=url, PROXY_STATE_NAMESPACE="fleet",
                                 PROXY_DOMAIN_COOLDOWN=0.3, PROXY_STATE_TIMEOUT=2.0)  # (a loaded machine)
        hits = Counter((s.host, s.path) for s in farm.site_seen)
    for job, result in zip(jobs, results, strict=True):
        assert result["errors"] == [] and sorted(p["url"] for p in result["pages"]) == sorted(job)
        assert all(valid(p) for p in result["pages"])
        assert "proxybalance/state/errors" not in result["stats"], result["log"][-2000:]
    assert farm.site_limited == []  # no exit asked a site again sooner than 0.3 s, across the fleet
    assert len(hits) == 64 and set(hits.values()) == {1}
    # every key of the pool under one hash tag: one slot, so each script is atomic on one node
    keys = [k.decode() for p in cluster for k in redis.Redis(port=p).keys("*")]
    assert keys and all(k.startswith("{fleet}:") for k in keys)
    assert len({redis.Redis(port=cluster[0]).cluster("keyslot", k) for k in keys}) == 1
