"""The guardrails worker, in a queue group: the chat pipeline stage on GUARDRAILS_CHAT
(check, then forward to the router), and plain input checks on GUARDRAILS_INPUT.

Every request gets a reply, even one that does not parse or that the check fails on:
the caller then sees a block verdict at once instead of waiting for its timeout.
"""
from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg
from nats.errors import MaxPayloadError
from pydantic import ValidationError

from services.guardrails.checks import Policy, check_input
from services.guardrails.pipeline import Forward, stage_chat
from shared.bus import connect
from shared.config import load_config
from shared.messages import Frame, GuardrailRequest, GuardrailVerdict
from shared.settings import Settings
from shared.subjects import FRAME_HEADER, GUARDRAILS_CHAT, GUARDRAILS_INPUT, GUARDRAILS_QUEUE, ROUTER_CHAT, STATUS_HEADER

log = logging.getLogger(__name__)

INVALID_REQUEST = "guardrails.invalid_request"
INTERNAL_ERROR = "guardrails.internal_error"
REPLY_TOO_LARGE = "guardrails.reply_too_large"


def _fail(rule: str, message: str) -> GuardrailVerdict:
    return GuardrailVerdict(verdict="block", rule=rule, message=message)


def verdict_for(policy: Policy, data: bytes) -> GuardrailVerdict:
    """The verdict for one raw request; never raises."""
    try:
        request = GuardrailRequest.model_validate_json(data)
    except ValidationError as exc:
        log.warning("invalid guardrail request: %d errors", exc.error_count())
        return _fail(INVALID_REQUEST, "Invalid guardrail request")
    try:
        return check_input(policy, request.messages)
    except Exception:
        log.exception("guardrail check failed for request %s", request.request_id)
        return _fail(INTERNAL_ERROR, "Guardrail check failed")


async def _respond(msg: Msg, verdict: GuardrailVerdict) -> None:
    try:
        await msg.respond(verdict.model_dump_json().encode())
    except MaxPayloadError:
        log.warning("guardrail verdict %s is larger than the server allows", verdict.verdict)
        await msg.respond(_fail(REPLY_TOO_LARGE, "Guardrail result too large").model_dump_json().encode())


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    policy = Policy.from_config(load_config(settings.config).guardrails)
    nc = await connect(settings.require("nats_url"), "jetgate-guardrails")

    async def on_chat(msg: Msg) -> None:
        if not msg.reply:
            return
        action = stage_chat(policy, msg.data)
        if isinstance(action, Forward):
            await nc.publish(ROUTER_CHAT, action.data, reply=msg.reply)
        else:
            await nc.publish(msg.reply, action.error.model_dump_json().encode(),
                             headers={FRAME_HEADER: Frame.ERROR.value, STATUS_HEADER: str(action.status)})

    async def on_request(msg: Msg) -> None:
        if not msg.reply:
            return
        # The check is CPU-only and short, so it runs inline on the subscription.
        await _respond(msg, verdict_for(policy, msg.data))

    try:
        await nc.subscribe(GUARDRAILS_INPUT, queue=GUARDRAILS_QUEUE, cb=on_request)
        await nc.subscribe(GUARDRAILS_CHAT, queue=GUARDRAILS_QUEUE, cb=on_chat)
        log.info("guardrails: %d rules, %s", len(policy.rules), "enabled" if policy.enabled else "disabled")
        await stop.wait()
    finally:
        await nc.drain()
