"""The replay loop: read batches from a source, write them to a sink, checkpoint, report."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext

from jetgate.replay.checkpoint import Checkpoint
from jetgate.replay.progress import Progress
from jetgate.replay.records import is_parquet
from jetgate.replay.sinks import Sink, Target, open_sink
from jetgate.replay.source import FileSource, Selection, StreamSource
from shared.settings import Settings

OpenSink = Callable[[str, str, Target], Awaitable[Sink]]


@dataclass(frozen=True)
class ReplayJob:
    selection: Selection
    to: str
    out: Path | None = None
    from_file: Path | None = None
    checkpoint: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class ReplayResult:
    read: int
    skipped: int
    last_seq: int | None
    seconds: float
    resumed_after: int | None


def _checkpoint_for(job: ReplayJob, last_seq: int, offset: int | None, written: int) -> Checkpoint:
    return Checkpoint(kind=job.selection.kind.name, subject=job.selection.subject, to=job.to,
                      out=str(job.out) if job.out else None, source=str(job.from_file) if job.from_file else None,
                      last_seq=last_seq, offset=offset, written=written)


def _resume_point(job: ReplayJob) -> Checkpoint | None:
    if job.checkpoint is None:
        return None
    found = Checkpoint.load(job.checkpoint)
    if found is None:
        return None
    if not found.same_replay(_checkpoint_for(job, 0, None, 0)):
        raise SystemExit(f"{job.checkpoint} is the checkpoint of another replay "
                         f"({found.kind} {found.subject} to {found.to}); remove it or name another file")
    if job.out is not None and is_parquet(job.out):
        raise SystemExit("a Parquet output cannot be resumed (a Parquet file is whole only once closed): start again")
    return found


async def replay(job: ReplayJob, settings: Settings, js: JetStreamContext | None,
                 sinks: OpenSink = open_sink) -> ReplayResult:
    resume = _resume_point(job)
    after = resume.last_seq if resume else None
    source: StreamSource | FileSource
    if job.from_file is not None:
        source = FileSource(job.from_file, job.selection, settings.replay, after)
    else:
        if js is None:
            raise SystemExit("NATS is needed to read the stream (or give --from FILE)")
        source = StreamSource(js, job.selection, settings.replay, after)
    target = Target(settings, job.out, resume.offset if resume else None)
    sink = await sinks(job.selection.kind.name, job.to, target)
    started = time.monotonic()
    written = resume.written if resume else 0  # over every run of this checkpoint
    read = skipped = 0  # in this run
    last_seq = after
    progress: Progress | None = None
    try:
        async for batch in source.batches():
            if progress is None:
                progress = Progress(f"{job.selection.kind.name} replay", source.total,
                                    interval_s=settings.replay.progress_interval_s, enabled=job.progress)
            for start in range(0, len(batch), settings.replay.write_batch):
                chunk = batch[start:start + settings.replay.write_batch]
                dropped = await sink.write(chunk)
                offset = await sink.flush()
                last_seq = chunk[-1].seq
                written += len(chunk)
                read += len(chunk)
                skipped += dropped
                if job.checkpoint is not None:
                    _checkpoint_for(job, last_seq, offset, written).save(job.checkpoint)
                progress.advance(len(chunk), dropped)
    finally:
        await sink.close()
        if progress is not None:
            progress.finish()
    return ReplayResult(read, skipped, last_seq, time.monotonic() - started, after)
