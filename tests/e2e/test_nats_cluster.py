"""The gateway on a three-node NATS cluster with R3 streams: kill -9 the node leading the
usage stream under load, and every request the gateway accepted keeps its usage row in
Postgres and ClickHouse and its audit rows, each once; serving goes on."""
from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jetgate.embedded.ports import free_port
from jetgate.embedded.postgres import EmbeddedPostgres
from shared.db.migrate import upgrade
from shared.subjects import STREAMS
from tests.e2e.conftest import ECHO_KEY, UPSTREAM_KEY, pg_rows
from tests.e2e.gateway import Gateway, gateway_env, wait_for
from tests.e2e.nats_cluster import NatsCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path_factory.mktemp("nats-cluster"))
    try:
        yield nodes.start()
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory, cluster: NatsCluster, gateway_config: Path
              ) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("clustered")
    postgres = EmbeddedPostgres(root / "pg" / "data")
    gw: Gateway | None = None
    try:
        postgres.start()
        upgrade(postgres.url)
        config = gateway_config
        port = free_port()
        master_key = "jg-master-" + secrets.token_hex(16)
        env = gateway_env(nats_url=cluster.url, database_url=postgres.url, clickhouse_url=f"chdb://{root / 'chdb'}",
                          config=config, port=port, master_key=master_key, upstream_key=UPSTREAM_KEY)
        gw = Gateway(env={**env, "ECHO_UPSTREAM_KEY": ECHO_KEY, "JETGATE_STREAM_REPLICAS": "3"}, workdir=root, port=port,
                     master_key=master_key)
        gw.start_all()
        yield gw
    finally:
        if gw is not None:
            gw.stop()
        postgres.stop()


def _chat(gateway: Gateway, key: str, i: int) -> tuple[int, str]:
    with gateway.client(key) as http:
        response = http.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"cluster request {i}"}]})
        return response.status_code, response.headers["x-request-id"]


def test_streams_are_replicated_three_times(clustered: Gateway, cluster: NatsCluster) -> None:
    for spec in STREAMS:
        assert cluster.stream_leader(spec.name) in {node.name for node in cluster.nodes}


def test_node_killed_under_load_loses_nothing(clustered: Gateway, cluster: NatsCluster) -> None:
    key, key_id = clustered.create_key("cluster-kill")
    total = 240
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_chat, clustered, key, i) for i in range(total)]
        wait_for(lambda: sum(f.done() for f in futures) >= total // 3, timeout=120, every=0.02)
        victim = cluster.node(cluster.stream_leader("JETGATE_USAGE"))
        victim.kill()
        killed_at = time.monotonic()
        results = [f.result() for f in futures]

    statuses = Counter(status for status, _ in results)
    # calls whose messages were on the killed node's connections may fail (fast), at most those in flight
    assert set(statuses) <= {200, 503, 504}, statuses
    assert statuses[200] >= total - 16, statuses

    # serving goes on with one node down
    after = [_chat(clustered, key, total + i) for i in range(10)]
    assert [status for status, _ in after] == [200] * 10, after
    assert time.monotonic() - killed_at < 90

    accepted = {request_id for status, request_id in results + after if status == 200}

    def charged() -> list[str]:
        rows = pg_rows(clustered, "SELECT request_id FROM spend_ledger WHERE key_id = $1", key_id)
        return [r["request_id"] for r in rows]

    # calls answered 503 may be charged too (estimated): wait for the accepted ones themselves
    ledger = wait_for(lambda: (c := charged()) and accepted <= set(c) and c, timeout=60)
    assert len(ledger) == len(set(ledger)), "a request was charged twice"
    assert accepted <= set(ledger), "an accepted request lost its usage row"

    def audited() -> Counter[tuple[str, str]]:
        rows = pg_rows(clustered, "SELECT request_id, type FROM audit_log WHERE key_id = $1 AND type IN "
                                  "('request.received', 'request.completed')", key_id)
        return Counter((r["request_id"], r["type"]) for r in rows)

    audit = wait_for(lambda: (a := audited()) and all((r, "request.completed") in a for r in accepted) and a, timeout=60)
    for request_id in accepted:
        assert audit[(request_id, "request.received")] == 1
        assert audit[(request_id, "request.completed")] == 1

    usage = wait_for(lambda: (rows := clustered.usage(key_id=key_id, group_by="key_id")) and
                     rows[0]["requests"] >= len(accepted) and rows, timeout=60)
    assert usage[0]["requests"] == len(set(ledger))
