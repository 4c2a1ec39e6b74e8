"""Multi-node servers for the tests, on free loopback ports and ended by their pid: a Valkey cluster whose slots are
assigned with the cluster commands (no external tool), and a Sentinel group (a primary, its replicas, sentinels)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import redis

from tests.support.servers import ValkeyServer, free_port

SLOTS = 16384


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class ValkeyCluster:
    """``masters`` Valkey nodes that share the 16 384 slots evenly, each with ``replicas`` replicas."""

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 1000) -> None:
        self.node_timeout_ms = node_timeout_ms
        args = (
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            str(node_timeout_ms),
            "--cluster-require-full-coverage",
            "no",
            "--cluster-allow-replica-migration",
            "no",
        )
        self.masters = [self._node(args) for _ in range(masters)]
        self.replicas = [[self._node(args) for _ in range(replicas)] for _ in range(masters)]

    @staticmethod
    def _node(args: tuple[str, ...]) -> ValkeyServer:
        # the bus port is the node's port + 10 000 unless named, and a free port may be above 55 535
        node = ValkeyServer(args=(*args, "--cluster-port", str(free_port())))
        node.bus_port = int(node.extra_args[-1])  # type: ignore[attr-defined]
        return node

    @property
    def nodes(self) -> list[ValkeyServer]:
        return self.masters + [r for group in self.replicas for r in group]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.masters[0].port}"

    def start(self) -> ValkeyCluster:
        try:
            for node in self.nodes:
                node.start()
            first = _client(self.masters[0].port)
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)  # type: ignore[attr-defined]
            per = SLOTS // len(self.masters)
            for index, master in enumerate(self.masters):
                end = SLOTS - 1 if index == len(self.masters) - 1 else (index + 1) * per - 1
                _client(master.port).execute_command("CLUSTER", "ADDSLOTSRANGE", index * per, end)
            wait_for(lambda: self._all_know(len(self.nodes)), "the nodes to meet")
            for master, group in zip(self.masters, self.replicas, strict=True):
                master_id = self.node_id(master.port)
                for replica in group:
                    _client(replica.port).execute_command("CLUSTER", "REPLICATE", master_id)
            wait_for(self.healthy, "the cluster to be ready")
        except BaseException:
            self.stop()
            raise
        return self

    def node_id(self, port: int) -> str:
        return str(_client(port).execute_command("CLUSTER", "MYID"))

    def _all_know(self, count: int) -> bool:
        for node in self.nodes:
            known = _client(node.port).execute_command("CLUSTER", "NODES").strip().splitlines()
            if len(known) < count or any("handshake" in line for line in known):
                return False
        return True

    def healthy(self) -> bool:
        """Every live node reports cluster_state:ok and sees the expected replicas in sync."""
        for node in self.nodes:
            if node.proc is None:
                continue
            info = _client(node.port).execute_command("CLUSTER", "INFO")
            if "cluster_state:ok" not in info:
                return False
        for group in self.replicas:
            for replica in group:
                if replica.proc is not None:
                    link = _client(replica.port).info("replication")
                    if link.get("role") == "slave" and link.get("master_link_status") != "up":
                        return False
        return True

    def flush(self) -> None:
        for master in self.live_masters():
            _client(master.port).flushall()

    def live_masters(self) -> list[ValkeyServer]:
        return [
            node
            for node in self.nodes
            if node.proc is not None and _client(node.port).info("replication").get("role") == "master"
        ]

    def master_of_slot(self, slot: int) -> ValkeyServer:
        by_port = {node.port: node for node in self.nodes}
        for start, end, master, *_ in _client(self.live_masters()[0].port).execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return by_port[int(master[1])]
        raise LookupError(f"no master serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels watching it as ``mymaster`` (quorum 2)."""

    master_name = "mymaster"

    def __init__(self, replicas: int = 1, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.down_after_ms = down_after_ms
        self.primary = ValkeyServer()
        self.replicas = [ValkeyServer() for _ in range(replicas)]
        self.sentinels = [ValkeyServer() for _ in range(sentinels)]

    @property
    def sentinel_hosts(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def start(self) -> SentinelGroup:
        try:
            self.primary.start()
            for replica in self.replicas:
                replica.extra_args = ("--replicaof", "127.0.0.1", str(self.primary.port))
                replica.start()
            wait_for(self._replicas_in_sync, "the replicas to sync")
            for sentinel in self.sentinels:
                self._start_sentinel(sentinel)
            wait_for(self._sentinels_agree, "the sentinels to see each other and the replicas")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sentinel(self, sentinel: ValkeyServer) -> None:
        conf = sentinel.dir / "sentinel.conf"
        conf.write_text(
            f"port {sentinel.port}\nbind 127.0.0.1\nprotected-mode no\ndir {sentinel.dir}\n"
            f"sentinel monitor {self.master_name} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master_name} 10000\n"
            f"sentinel parallel-syncs {self.master_name} 1\n"
        )
        sentinel.proc = subprocess.Popen(
            [sentinel.binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: bool(_client(sentinel.port).ping()), f"sentinel on port {sentinel.port}", timeout=10)

    def _replicas_in_sync(self) -> bool:
        return all(_client(r.port).info("replication").get("master_link_status") == "up" for r in self.replicas)

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            fields = _client(sentinel.port).sentinel_master(self.master_name)
            if int(fields["num-other-sentinels"]) < len(self.sentinels) - 1:
                return False
            if int(fields["num-slaves"]) < len(self.replicas):
                return False
        return True

    def current_primary_port(self) -> int:
        host, port = _client(self.sentinels[0].port).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
        )
        return int(port)

    def stop(self) -> None:
        for server in [*self.sentinels, self.primary, *self.replicas]:
            server.stop()
