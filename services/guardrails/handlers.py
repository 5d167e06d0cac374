"""The guardrails worker: the guardrails stage of every pipeline that has one, in the
`guardrails` queue group. A checked call goes on to its next stage with the caller's reply
subject; a refused one is answered at once (shared/stage.py)."""
from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from services.guardrails.checks import Policy
from services.guardrails.stage import checked_body
from services.guardrails.verdict import GuardrailVerdict
from shared.bus import connect, jetstream
from shared.config import load_config
from shared.config_events import announce_config
from shared.events import GuardrailData, GuardrailEvent, GuardrailFinding, envelope_ids
from shared.metrics_server import start_metrics_server
from shared.pipeline import Stage, served_by
from shared.protocol import Call, forward
from shared.publisher import EventPublisher
from shared.settings import Settings
from shared.stage import StageServer

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    config = load_config(settings.config)
    policy = Policy.from_config(config.guardrails)
    start_metrics_server(settings.guardrails.metrics_host, settings.guardrails.metrics_port, "guardrails")
    nc = await connect(settings.require("nats_url"), "jetgate-guardrails", settings.bus)
    js = jetstream(nc, settings.bus)
    events = EventPublisher(js, settings.events, nc=nc)

    def report(call: Call, verdict: GuardrailVerdict) -> None:
        events.emit(finding_event(call, verdict))

    async def on_call(msg: Msg, call: Call) -> None:
        # CPU-only and short: runs inline on the subscription; the finding event is published off it
        await forward(nc, msg, call, checked_body(policy, call, report))

    server = StageServer(nc, Stage.GUARDRAILS, dict.fromkeys(served_by(Stage.GUARDRAILS), on_call),
                         concurrent=False, heartbeat_s=settings.bus.heartbeat_interval_s)
    try:
        await server.start()
        await announce_config(js, events.emit, "guardrails", config, settings)
        log.info("guardrails: %d rules, %s", len(policy.rules), "enabled" if policy.enabled else "disabled")
        await stop.wait()
        await server.stop(settings.guardrails.drain_timeout_s)
    finally:
        await events.flush()
        await nc.drain()


def finding_event(call: Call, verdict: GuardrailVerdict) -> GuardrailEvent:
    """`guardrail.finding`: the rules that matched one call and how often (never the text)."""
    envelope = call.envelope
    return GuardrailEvent(
        source="guardrails", **envelope_ids(envelope.principal, envelope.request_id),
        data=GuardrailData(endpoint=envelope.endpoint.value, model=envelope.route.model,
                           verdict="block" if verdict.verdict == "block" else "modify",
                           findings=[GuardrailFinding(rule=f.rule, action=f.action, count=f.count)
                                     for f in verdict.findings]))
