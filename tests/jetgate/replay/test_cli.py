"""`jetgate audit …` as a user runs it: a process, real NATS and Postgres, exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, update

from services.accounting.audit_chain import Sequenced, record_chained_audit
from shared.bus import publish_event
from shared.db.tables import audit_log
from shared.events import KeyData, KeyEvent

REPO = Path(__file__).resolve().parents[3]


def jetgate(args: list[str], nats_url: str, database_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JETGATE_NATS_URL": nats_url, "JETGATE_DATABASE_URL": database_url,
           "JETGATE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "jetgate.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


async def test_verify_exits_nonzero_at_the_first_broken_link(nats_url, database_url, engine, org_id, tmp_path) -> None:
    events = [KeyEvent(type="key.created", source="cli", org_id=org_id, data=KeyData(name=f"k{i}")) for i in range(4)]
    await record_chained_audit(engine, [Sequenced(i + 1, e) for i, e in enumerate(events)])
    ok = jetgate(["audit", "verify", "--org", org_id], nats_url, database_url, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "audit chain intact: 4 rows in 1 orgs" in ok.stdout

    async with engine.begin() as conn:
        await conn.execute(update(audit_log).where(audit_log.c.event_id == events[1].id).values(source="ingress"))
    broken = jetgate(["audit", "verify", "--org", org_id], nats_url, database_url, tmp_path)
    assert broken.returncode == 1
    assert f"org {org_id} at stream sequence 2 (event {events[1].id})" in broken.stderr and "altered" in broken.stderr


async def test_export_and_replay_from_the_command_line(nats_url, database_url, engine, nc, org_id, tmp_path) -> None:
    events = [KeyEvent(type="key.revoked", source="cli", org_id=org_id, data=KeyData(name=f"k{i}")) for i in range(5)]
    for event in events:
        await publish_event(nc.jetstream(), event)
    out = tmp_path / "audit.parquet"
    export = jetgate(["audit", "export", "--since", "1h", "--until", "2999-01-01", "--org", org_id, "--out", str(out)],
                     nats_url, database_url, tmp_path)
    assert export.returncode == 0, export.stderr
    assert "5 events to jsonl" in export.stderr and "events/s" in export.stderr
    restore = jetgate(["audit", "replay", "--since", "1970-01-01", "--org", org_id, "--from", str(out), "--to", "postgres"],
                      nats_url, database_url, tmp_path)
    assert restore.returncode == 0, restore.stderr
    async with engine.connect() as conn:
        ids = (await conn.execute(select(audit_log.c.event_id).where(audit_log.c.org_id == org_id)
                                  .order_by(audit_log.c.stream_seq))).scalars().all()
    assert ids == [event.id for event in events]
    shown = jetgate(["audit", "replay", "--since", "1h", "--org", org_id, "--to", "stdout", "--no-progress"],
                    nats_url, database_url, tmp_path)
    assert [line.count(org_id) for line in shown.stdout.splitlines()] == [1] * 5
    missing = jetgate(["audit", "replay", "--since", "1h", "--to", "jsonl"], nats_url, database_url, tmp_path)
    assert missing.returncode != 0 and "--out FILE" in missing.stderr
