"""`jetgate up`: the whole gateway on one machine, embedded servers where no URL is given."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from pathlib import Path

from jetgate.bootstrap import bootstrap_admin_key, prepare_bus
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.home import HomeState, clear_state, write_state
from jetgate.readiness import wait_ready
from jetgate.supervisor import Supervisor, child_env
from shared.config import load_config
from shared.db.migrate import upgrade
from shared.settings import Settings

log = logging.getLogger("jetgate.up")


def up(settings: Settings) -> int:
    load_config(settings.config)  # refuse a broken config before starting anything
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    nats = None if settings.nats_url else EmbeddedNats(home / "nats")
    postgres = None if settings.database_url else EmbeddedPostgres(home / "postgres" / "data")
    supervisor: Supervisor | None = None
    try:
        nats_url = settings.nats_url or nats.start().url  # type: ignore[union-attr]
        database_url = settings.database_url or postgres.start().url  # type: ignore[union-attr]
        clickhouse_url = settings.clickhouse_url or f"chdb://{home / 'chdb'}"
        upgrade(database_url)
        asyncio.run(prepare_bus(nats_url, settings.stream_replicas))
        url = f"http://{settings.host}:{settings.port}"
        env = child_env(nats_url=nats_url, database_url=database_url, clickhouse_url=clickhouse_url,
                        config=str(Path(settings.config).resolve()), home=str(home),
                        host=settings.host, port=str(settings.port))
        supervisor = Supervisor(env)
        supervisor.start_all()
        asyncio.run(wait_ready(nats_url, url))
        write_state(home, HomeState(pid=os.getpid(), nats_url=nats_url, database_url=database_url,
                                    clickhouse_url=clickhouse_url, url=url))
        admin_key = None if settings.master_key else asyncio.run(bootstrap_admin_key(database_url))
        if admin_key:
            print(f"admin key (shown once): {admin_key}", flush=True)
        elif not settings.master_key:
            log.info("an admin key exists from an earlier start; make another with `jetgate keys create --admin`")
        print(f"ready {url}", flush=True)
        while not stopping.wait(0.5):
            supervisor.check()
        log.info("stopping")
        return 0
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        clear_state(home)
        if postgres is not None:
            postgres.stop()
        if nats is not None:
            nats.stop()
