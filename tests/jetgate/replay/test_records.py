"""Replay building blocks without servers: the record format, subject filters, times, progress."""
from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jetgate.replay.parser import parse_moment
from jetgate.replay.progress import Progress
from jetgate.replay.records import JsonlWriter, ParquetWriter, Record, read_file
from jetgate.replay.source import KINDS, subject_matches

STORED = datetime(2026, 11, 30, 8, 15, 1, 123456, tzinfo=UTC)


def records(count: int) -> list[Record]:
    return [Record(i + 1, f"jetgate.audit.o{i % 2}.request.received", STORED + timedelta(seconds=i),
                   b'{"id":"e%d","type":"request.received","x":"caf\xc3\xa9"}' % i) for i in range(count)]


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet"])
def test_files_give_back_the_records_exactly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = JsonlWriter.open(path, None) if name.endswith("jsonl") else ParquetWriter(path)
    writer.write(records(3))
    writer.write(records(5)[3:])
    writer.close()
    back = list(read_file(path))
    assert [(r.seq, r.subject, r.stored) for r in back] == [(r.seq, r.subject, r.stored) for r in records(5)]
    assert [r.data for r in back] == [r.data for r in records(5)]


def test_jsonl_resume_cuts_back_to_the_checkpointed_length(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = JsonlWriter.open(path, None)
    writer.write(records(2))
    durable = writer.flush()
    writer.write(records(3)[2:])  # written after the last checkpoint
    writer.close()
    again = JsonlWriter.open(path, durable)
    again.write(records(4)[2:])
    again.close()
    assert [r.seq for r in read_file(path)] == [1, 2, 3, 4]


def test_a_multi_line_event_stays_one_line() -> None:
    record = Record(1, "s", STORED, b'{\n  "id": "e"\n}')
    assert record.jsonl().count(b"\n") == 1
    assert Record.from_jsonl(record.jsonl()).data == b'{"id":"e"}'


def test_a_body_that_is_not_json_stays_one_readable_line() -> None:
    record = Record(7, "s", STORED, b'not json {"\n')
    line = record.jsonl()
    assert line.count(b"\n") == 1
    assert Record.from_jsonl(line).data == b'not json {"\n'


def test_subject_filters() -> None:
    audit, usage = KINDS["audit"], KINDS["usage"]
    assert audit.subject("acme") == "jetgate.audit.acme.>" and audit.subject(None) == "jetgate.audit.>"
    assert usage.subject("a.b") == "jetgate.usage.a_b"
    assert subject_matches("jetgate.audit.acme.>", "jetgate.audit.acme.key.created")
    assert not subject_matches("jetgate.audit.acme.>", "jetgate.audit.acme")
    assert not subject_matches("jetgate.audit.acme.>", "jetgate.audit.acmex.key.created")
    assert subject_matches("jetgate.usage.*", "jetgate.usage.x")
    assert not subject_matches("jetgate.usage.x", "jetgate.usage.x.y")


def test_times_are_iso_or_ago() -> None:
    assert parse_moment("2026-11-30T08:00:00+01:00") == datetime(2026, 11, 30, 7, tzinfo=UTC)
    assert parse_moment("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert abs(parse_moment("24h") - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(seconds=5)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_moment("yesterday")


def test_progress_shows_counts_share_and_rate() -> None:
    out = io.StringIO()
    progress = Progress("audit replay", 200, interval_s=0, out=out)
    progress.advance(50, skipped=2)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("audit replay: 50 / 200 (25.0%) events, 2 skipped, ")
    assert "events/s" in lines[-1]
    quiet = io.StringIO()
    Progress("x", None, out=quiet, enabled=False).advance(5)
    assert quiet.getvalue() == ""
