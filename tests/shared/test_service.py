"""How a service process starts: its settings' secrets remembered, its logging redacted."""
from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from shared.redact import RedactingFilter
from shared.secrets import KNOWN_SECRETS
from shared.service import setup_process
from shared.settings import Settings


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger as the test found it, put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_setup_process_remembers_secrets_and_redacts_every_logger(root_logging: logging.Logger,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    master, password = "jg-master-" + secrets.token_hex(12), "db-" + secrets.token_hex(12)
    settings = Settings(master_key=SecretStr(master), database_url=f"postgresql://jetgate:{password}@db:5432/jg",
                        log_level="INFO")
    setup_process(settings, "testsvc")
    assert master in KNOWN_SECRETS and password in KNOWN_SECRETS
    (handler,) = root_logging.handlers
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)

    logging.getLogger("some.library.deep.inside").warning("connecting with %s and %s", password, master)
    err = capsys.readouterr().err
    assert password not in err and master not in err
    assert "testsvc WARNING some.library.deep.inside: connecting with *** and ***" in err


def test_a_library_logger_with_its_own_handler_is_redacted_too(root_logging: logging.Logger) -> None:
    import io

    out = io.StringIO()
    own = logging.getLogger(f"tests.own-handler.{secrets.token_hex(4)}")
    own.addHandler(logging.StreamHandler(out))
    own.propagate = False
    value = "own-" + secrets.token_hex(12)
    setup_process(Settings(master_key=SecretStr(value)), "testsvc")
    own.warning("key %s", value)
    assert out.getvalue() == "key ***\n"


def test_a_worker_serves_with_its_startup_heap_frozen() -> None:
    """Full collections walk only what the worker made since it started serving: everything
    imported and built before is frozen (`gc.freeze`). In a process of its own: the test
    process's collector is left as it is."""
    script = ("import gc, asyncio\n"
              "from shared.service import run_worker\n"
              "async def serve(settings, stop):\n"
              "    print(gc.get_freeze_count())\n"
              "run_worker('probe', serve)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "JETGATE_LOG_LEVEL": "WARNING"})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000  # the modules' objects, at least
