"""nats-server killed with SIGKILL under load, restarted by the supervisor as under
`jetgate up`: requests while it is away get a fast 503, never a hang; serving resumes by
itself; nothing accepted is lost, and what reached the upstream is charged once, as seen."""
from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from jetgate.embedded.children import NATS_CHILD
from tests.e2e.gateway import Gateway, wait_for
from tests.e2e.outcomes import Outcome, assert_charged_as_seen, chat
from tests.fakes.openai_upstream import FakeOpenAI

WORKER_TIMEOUT_S = 5.0  # JETGATE_INGRESS__WORKER_TIMEOUT_S of the e2e gateway


def test_nats_server_killed_under_load(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("nats-killed")
    tag = f"nats-outage-{uuid.uuid4().hex[:8]}"
    total = 150
    nats = gateway.supervisor.children[NATS_CHILD]
    with gateway.supervising(), ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(chat, gateway, key, tag, n) for n in range(total)]
        wait_for(lambda: sum(f.done() for f in futures) >= total // 3, timeout=120, every=0.02)
        nats.kill()  # SIGKILL, reaped; the supervisor's loop brings it back on its port and store
        outcomes: list[Outcome] = [f.result() for f in futures]

        def served_again() -> bool:
            outcomes.append(chat(gateway, key, tag, len(outcomes)))
            return outcomes[-1].status == 200

        # serving again by itself, without anyone restarting a service
        wait_for(served_again, timeout=10, every=0.1)
    assert nats.crashes == 1 and nats.alive()

    statuses = Counter(o.status for o in outcomes)
    assert statuses[200] >= total // 3 and set(statuses) <= {200, 503, 504}, statuses
    refused = [o for o in outcomes if o.status == 503]
    assert all(o.code in {"bus_unavailable", "service_unavailable"} for o in refused), Counter(o.code for o in refused)
    # a 503 is an answer, not a timeout: none of them sat out the worker timeout
    assert all(o.seconds < WORKER_TIMEOUT_S for o in refused if o.code == "bus_unavailable")

    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        assert http.get("/ready").json()["checks"]["nats"] == "ok"
    outcomes.append(chat(gateway, key, tag, len(outcomes)))
    assert outcomes[-1].status == 200
    assert_charged_as_seen(gateway, fake_openai, key_id, tag, outcomes)
