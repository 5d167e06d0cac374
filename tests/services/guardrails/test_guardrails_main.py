"""`python -m services.guardrails` as its own process: serves, then stops cleanly on SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import nats
import yaml
from nats.errors import NoRespondersError
from shared.messages import GuardrailRequest, GuardrailVerdict

from shared.events import Principal
from shared.openai_types import ChatMessage
from shared.subjects import GUARDRAILS_INPUT


def test_importing_main_starts_nothing() -> None:
    import services.guardrails.__main__ as entry

    assert callable(entry.main)


async def test_worker_process_serves_and_stops_on_sigterm(nats_url: str, tmp_path: Path) -> None:
    config = tmp_path / "jetgate.yaml"
    config.write_text(yaml.safe_dump({"guardrails": {"rules": [{"name": "no-secrets", "pattern": "secret"}]}}))
    env = {**os.environ, "JETGATE_NATS_URL": nats_url, "JETGATE_CONFIG": str(config)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.guardrails", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    payload = GuardrailRequest(
        request_id="r1", principal=Principal(key_id="k"), model="m",
        messages=[ChatMessage(role="user", content="a secret")],
    ).model_dump_json().encode()
    nc = await nats.connect(nats_url)
    try:
        async with asyncio.timeout(30):
            while True:
                assert process.returncode is None, "worker exited early"
                try:
                    reply = await nc.request(GUARDRAILS_INPUT, payload, timeout=1)
                    break
                except (NoRespondersError, TimeoutError):
                    await asyncio.sleep(0.05)
        verdict = GuardrailVerdict.model_validate_json(reply.data)
        assert (verdict.verdict, verdict.rule) == ("block", "no-secrets")

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await nc.close()
