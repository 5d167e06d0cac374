"""A replay's checkpoint file: the last stream sequence written (and made durable) to the
sink, and for a JSONL file its length then. A replay given `--checkpoint FILE` that finds
the file resumes after that sequence (a JSONL output cut back to that length first, so
nothing is written twice); the database sinks are idempotent anyway, so for them the
checkpoint only saves re-reading."""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel


class Checkpoint(BaseModel):
    kind: str
    subject: str
    to: str
    out: str | None = None
    source: str | None = None  # the --from file, or None for the stream
    last_seq: int
    offset: int | None = None
    written: int = 0

    def same_replay(self, other: Checkpoint) -> bool:
        fields = ("kind", "subject", "to", "out", "source")
        return all(getattr(self, name) == getattr(other, name) for name in fields)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_bytes())

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the old checkpoint or the new one, never half of one."""
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            handle.write(self.model_dump_json().encode())
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
