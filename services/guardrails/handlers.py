"""The guardrails worker: the guardrails stage of every pipeline that has one, in the
`guardrails` queue group. A checked call goes on to its next stage with the caller's reply
subject; a refused one is answered at once (shared/stage.py)."""
from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from services.guardrails.checks import Policy
from services.guardrails.stage import checked_body
from shared.bus import connect
from shared.config import load_config
from shared.metrics_server import start_metrics_server
from shared.pipeline import Stage, served_by
from shared.protocol import Call, forward
from shared.settings import Settings
from shared.stage import StageServer

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    policy = Policy.from_config(load_config(settings.config).guardrails)
    start_metrics_server(settings.guardrails.metrics_host, settings.guardrails.metrics_port, "guardrails")
    nc = await connect(settings.require("nats_url"), "jetgate-guardrails", settings.bus)

    async def on_call(msg: Msg, call: Call) -> None:
        # CPU-only and short: runs inline on the subscription
        await forward(nc, msg, call, checked_body(policy, call))

    server = StageServer(nc, Stage.GUARDRAILS, dict.fromkeys(served_by(Stage.GUARDRAILS), on_call),
                         concurrent=False, heartbeat_s=settings.bus.heartbeat_interval_s)
    try:
        await server.start()
        log.info("guardrails: %d rules, %s", len(policy.rules), "enabled" if policy.enabled else "disabled")
        await stop.wait()
        await server.stop(settings.guardrails.drain_timeout_s)
    finally:
        await nc.drain()
