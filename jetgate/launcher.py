"""`jetgate up`: the whole gateway on one machine, embedded servers where no URL is given."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from jetgate.bootstrap import bootstrap_admin_key, prepare_bus
from jetgate.credentials import bus_as, ensure_credentials
from jetgate.embedded.children import nats_child, postgres_child
from jetgate.embedded.nats import EmbeddedNats
from jetgate.embedded.ports import port_or_free
from jetgate.embedded.postgres import EmbeddedPostgres
from jetgate.home import HomeState, clear_state, write_state
from jetgate.readiness import wait_ready
from jetgate.supervisor import SERVICES, Child, Supervisor, child_env, service_argv
from shared.bus_users import ADMIN, USERS
from shared.config import load_config
from shared.db.migrate import upgrade
from shared.settings import Settings

log = logging.getLogger("jetgate.up")


def with_metrics_ports(settings: Settings) -> Settings:
    """Each worker's metrics port: its setting, or a free one when that is taken."""
    return settings.model_copy(update={
        name: group.model_copy(update={"metrics_port": port_or_free(group.metrics_port, group.metrics_host)})
        for name, group in (("guardrails", settings.guardrails), ("router", settings.router),
                            ("accounting", settings.accounting))})


def metrics_locations(settings: Settings) -> dict[str, str]:
    ingress = settings.ingress
    found = {"ingress": f"http://{ingress.host}:{ingress.port}/metrics"}
    for name, group in (("guardrails", settings.guardrails), ("router", settings.router),
                        ("accounting", settings.accounting)):
        found[name] = f"http://{group.metrics_host}:{group.metrics_port}/metrics"
    return found


def up(settings: Settings) -> int:
    from services.router.providers import check_providers

    check_providers(load_config(settings.config))  # refuse a broken config before starting anything
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    # the embedded servers are closed: generated passwords, one NATS user per service
    credentials = ensure_credentials(home) if not (settings.nats_url and settings.database_url) else None
    nats = None if settings.nats_url or credentials is None else EmbeddedNats(
        home / "nats", users={user: credentials.nats_password(user) for user in USERS},
        readers=credentials.reader_passwords(), reader_consumers=settings.event_feed.credential_consumers)
    postgres = None if settings.database_url or credentials is None else EmbeddedPostgres(
        home / "postgres" / "data", password=credentials.postgres_password.get_secret_value())
    bus_credentials = credentials if nats is not None else None
    admin_bus = bus_as(settings.bus, bus_credentials, ADMIN)
    supervisor = Supervisor()
    try:
        # the embedded servers are supervised like the services: restarted on their port and data
        if nats is not None:
            supervisor.add(nats_child(nats))
            nats.wait_ready()
        if postgres is not None:
            supervisor.add(postgres_child(postgres))
            postgres.wait_ready()
        nats_url = settings.nats_url or nats.url  # type: ignore[union-attr]
        database_url = settings.database_url or postgres.url  # type: ignore[union-attr]
        clickhouse_url = settings.clickhouse_url or f"chdb://{home / 'chdb'}"
        upgrade(database_url)
        asyncio.run(prepare_bus(nats_url, settings.stream_replicas, admin_bus, settings.stream_limits()))
        settings = with_metrics_ports(settings.model_copy(update={
            "nats_url": nats_url, "database_url": database_url, "clickhouse_url": clickhouse_url,
            "config": settings.config.resolve(), "home": home}))
        for service in SERVICES:
            own = settings.model_copy(update={"bus": bus_as(settings.bus, bus_credentials, service)})
            supervisor.add(Child(service, service_argv(service), child_env(own.to_env()), service=service))
        url = f"http://{settings.ingress.host}:{settings.ingress.port}"
        asyncio.run(wait_ready(http_url=url, nats_url=nats_url, bus=admin_bus))
        write_state(home, HomeState(pid=os.getpid(), nats_url=nats_url, database_url=database_url,
                                    clickhouse_url=clickhouse_url, url=url))
        admin_key = None if settings.master_key else asyncio.run(bootstrap_admin_key(database_url))
        if admin_key:
            print(f"admin key (shown once): {admin_key}", flush=True)
        elif not settings.master_key:
            log.info("an admin key exists from an earlier start; make another with `jetgate keys create --admin`")
        print(f"ready {url}", flush=True)
        for service, where in metrics_locations(settings).items():
            print(f"metrics {service} {where}", flush=True)
        while not stopping.wait(0.2):
            supervisor.check()
        log.info("stopping")
        return 0
    finally:
        supervisor.stop_all()  # the services in order, then nats-server and Postgres
        clear_state(home)
