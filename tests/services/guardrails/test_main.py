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

from shared.pipeline import Endpoint, Stage, stage_subject
from shared.protocol import error_of
from tests.services.guardrails.test_handlers import call


def test_importing_main_starts_nothing() -> None:
    import services.guardrails.__main__ as entry

    assert callable(entry.main)


async def test_worker_process_serves_and_stops_on_sigterm(nats_url: str, tmp_path: Path) -> None:
    config = tmp_path / "jetgate.yaml"
    config.write_text(yaml.safe_dump({"guardrails": {"rules": [{"name": "no-secrets", "pattern": "secret"}]}}))
    env = {**os.environ, "JETGATE_NATS_URL": nats_url, "JETGATE_CONFIG": str(config),
           "JETGATE_GUARDRAILS__METRICS_PORT": "0"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.guardrails", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    payload = call("a secret").encode()
    nc = await nats.connect(nats_url)
    try:
        async with asyncio.timeout(30):
            while True:
                assert process.returncode is None, "worker exited early"
                try:
                    reply = await nc.request(stage_subject(Stage.GUARDRAILS, Endpoint.CHAT), payload, timeout=1)
                    break
                except (NoRespondersError, TimeoutError):
                    await asyncio.sleep(0.05)
        error = error_of(reply)
        assert error is not None and error.code == "guardrail_blocked" and "no-secrets" in error.message

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await nc.close()
