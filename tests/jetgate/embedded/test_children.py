"""Embedded servers under the one supervisor: killed with SIGKILL, they come back on the
same port with the same data, reaped (no zombie), and clients reconnect by themselves."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from jetgate import supervisor as sup
from jetgate.embedded.children import nats_child, postgres_child
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import wait_for_port
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.supervisor import Child, Supervisor
from shared.bus import connect
from shared.settings import BusSettings


def restarted(supervisor: Supervisor, child: Child, port: int, timeout: float = 30.0) -> int:
    """Run the supervisor's loop until `child` is up again and listens on `port`; its new pid."""
    old = child.pid
    deadline = time.monotonic() + timeout
    while not (child.alive() and child.pid != old):
        assert time.monotonic() < deadline, f"{child.name} was not restarted"
        supervisor.check()
        time.sleep(0.02)
    wait_for_port(port, timeout=timeout)
    return child.pid


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "FIRST_BACKOFF_S", 0.05)


async def test_nats_server_comes_back_on_its_port_with_its_stream(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    supervisor = Supervisor()
    child = supervisor.add(nats_child(server))
    try:
        server.wait_ready()
        port = server.port
        nc = await connect(server.url, "children-test", BusSettings(reconnect_wait_s=0.05))
        try:
            js = nc.jetstream(timeout=5)
            await js.add_stream(name="KEPT", subjects=["kept.>"])
            await js.publish("kept.one", b"accepted before the crash")
            dead = child.process
            assert dead is not None
            child.kill()  # SIGKILL, as an OOM killer would
            assert dead.poll() is not None  # reaped: no zombie left behind
            await asyncio.to_thread(restarted, supervisor, child, port)
            assert server.port == port and child.crashes == 1
            deadline = time.monotonic() + 10
            while not nc.is_connected:  # the same client, reconnected by itself
                assert time.monotonic() < deadline, "the client did not reconnect"
                await asyncio.sleep(0.05)
            msg = await js.get_last_msg("KEPT", "kept.one")
            assert msg.data == b"accepted before the crash"  # the file store survived
            await js.publish("kept.two", b"accepted after the restart")
            assert (await js.stream_info("KEPT")).state.messages == 2
        finally:
            await nc.close()
    finally:
        supervisor.stop_all(timeout=10)
    assert child.process is None


async def test_postgres_comes_back_on_its_port_with_its_data(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg" / "data")
    supervisor = Supervisor()
    child = supervisor.add(postgres_child(server))
    try:
        server.wait_ready()
        port = server.port
        conn = await asyncpg.connect(server.url, timeout=5)
        await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('committed before the crash')")
        await conn.close()
        child.kill()
        await asyncio.to_thread(restarted, supervisor, child, port, 60)
        assert server.port == port
        deadline = time.monotonic() + 30
        while True:  # its backends may still be going down: the supervisor retries until it is up
            try:
                conn = await asyncpg.connect(server.url, timeout=2)
                break
            except (OSError, asyncpg.PostgresError, TimeoutError):
                assert time.monotonic() < deadline, "postgres did not accept connections again"
                supervisor.check()
                await asyncio.sleep(0.1)
        try:
            assert await conn.fetchval("SELECT note FROM kept") == "committed before the crash"
        finally:
            await conn.close()
    finally:
        supervisor.stop_all(timeout=30)
    assert child.process is None
