"""Three nats-server processes from the wheel as one JetStream cluster, on loopback ports,
for the tests that kill a node under load."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.errors import Error as NatsError

from jetgate.embedded.lifetime import die_with_parent, stop_process
from jetgate.embedded.nats import MAX_PAYLOAD, nats_server_binary
from jetgate.embedded.ports import free_port, wait_for_port


@dataclass
class Node:
    name: str
    store_dir: Path
    client_port: int
    cluster_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self, routes: list[int]) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        route_list = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
        conf.write_text(
            f"server_name: {self.name}\n"
            f'listen: "127.0.0.1:{self.client_port}"\n'
            f"max_payload: {MAX_PAYLOAD}\n"
            f'jetstream {{ store_dir: "{self.store_dir}" }}\n'
            f'cluster {{ name: jetgate-test, listen: "127.0.0.1:{self.cluster_port}", routes: [{route_list}] }}\n')
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=die_with_parent)

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to the cluster."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        stop_process(self.process, timeout=15)
        self.process = None


@dataclass
class NatsCluster:
    root: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """All nodes, comma-separated: what JETGATE_NATS_URL takes for a cluster."""
        return ",".join(node.url for node in self.nodes)

    def start(self, size: int = 3, timeout: float = 60.0) -> NatsCluster:
        self.nodes = [Node(f"n{i}", self.root / f"n{i}", free_port(), free_port()) for i in range(size)]
        for node in self.nodes:
            node.start([other.cluster_port for other in self.nodes if other is not node])
        for node in self.nodes:
            wait_for_port(node.client_port, timeout=timeout)
        asyncio.run(self._wait_for_jetstream(timeout))
        return self

    async def _wait_for_jetstream(self, timeout: float) -> None:
        """Until the cluster has a JetStream meta leader (it answers account info)."""
        deadline = time.monotonic() + timeout
        nc = await nats.connect([node.url for node in self.nodes], connect_timeout=2)
        try:
            while True:
                try:
                    await nc.jetstream(timeout=2).account_info()
                    return
                except (TimeoutError, NatsError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.25)
        finally:
            await nc.close()

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def stream_leader(self, stream: str) -> str:
        async def ask() -> str:
            nc = await nats.connect([node.url for node in self.nodes], connect_timeout=2)
            try:
                info = await nc.jetstream(timeout=5).stream_info(stream)
                assert info.cluster is not None and info.cluster.leader is not None
                return info.cluster.leader
            finally:
                await nc.close()

        return asyncio.run(ask())

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
