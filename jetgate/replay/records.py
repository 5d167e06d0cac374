"""One stored event as a replay carries it, and the files it is kept in.

A record is the event's JSON exactly as it was published (so the rows written from it are
the rows accounting wrote), its stream sequence (the audit chain's order), its subject and
the time the stream stored it (what `--since` and `--until` select on).

Files: JSONL, one record a line (`{"seq":…,"subject":…,"stored":…,"event":{…}}`), or
Parquet (columns seq, subject, stored, event) when the name ends in `.parquet`; Parquet
is written with pyarrow, which chDB already brings (no new dependency).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

PARQUET_SUFFIX = ".parquet"


@dataclass(frozen=True)
class Record:
    seq: int
    subject: str
    stored: datetime
    data: bytes  # the event's JSON

    def jsonl(self) -> bytes:
        try:
            parsed = orjson.loads(self.data)
        except orjson.JSONDecodeError:  # not JSON (accounting dead-letters it): kept as a string
            event = orjson.dumps(self.data.decode("utf-8", "replace"))
        else:
            event = self.data if b"\n" not in self.data else orjson.dumps(parsed)
        head = orjson.dumps({"seq": self.seq, "subject": self.subject, "stored": _iso(self.stored)})
        return head[:-1] + b',"event":' + event + b"}\n"

    @classmethod
    def from_jsonl(cls, line: bytes) -> Record:
        obj = orjson.loads(line)
        event = obj["event"]
        data = event.encode() if isinstance(event, str) else orjson.dumps(event)
        return cls(int(obj["seq"]), str(obj["subject"]), _parse_iso(obj["stored"]), data)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_parquet(path: Path) -> bool:
    return path.name.endswith(PARQUET_SUFFIX)


def read_file(path: Path) -> Iterator[Record]:
    """Every record of a JSONL or Parquet file, in file order."""
    if is_parquet(path):
        yield from _read_parquet(path)
        return
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield Record.from_jsonl(line)


def _read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        columns = batch.to_pydict()
        for seq, subject, stored, event in zip(columns["seq"], columns["subject"], columns["stored"], columns["event"],
                                               strict=True):
            yield Record(int(seq), subject, stored if stored.tzinfo else stored.replace(tzinfo=UTC), event.encode())


class JsonlWriter:
    """Appends records to a JSONL file; `offset` is the length of what is durable."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    @classmethod
    def open(cls, path: Path, resume_at: int | None) -> JsonlWriter:
        """A new file, or (resuming) the file cut back to the offset the checkpoint recorded."""
        if resume_at is None:
            return cls(path.open("wb"))
        handle = path.open("r+b")
        handle.truncate(resume_at)
        handle.seek(resume_at)
        return cls(handle)

    def write(self, records: list[Record]) -> None:
        self._handle.write(b"".join(record.jsonl() for record in records))

    def flush(self) -> int:
        self._handle.flush()
        return self._handle.tell()

    def close(self) -> None:
        self._handle.close()


class ParquetWriter:
    """Writes records as Parquet row groups. A Parquet file is whole only once closed, so an
    interrupted export to Parquet starts again (no resume)."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([("seq", pa.int64()), ("subject", pa.string()),
                                  ("stored", pa.timestamp("us", tz="UTC")), ("event", pa.string())])
        self._writer: Any = pq.ParquetWriter(path, self._schema, compression="zstd")

    def write(self, records: list[Record]) -> None:
        columns = {"seq": [r.seq for r in records], "subject": [r.subject for r in records],
                   "stored": [r.stored for r in records], "event": [r.data.decode("utf-8", "replace") for r in records]}
        self._writer.write_table(self._pa.Table.from_pydict(columns, schema=self._schema))

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        self._writer.close()
