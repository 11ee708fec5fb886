"""Embedded PostgreSQL from the `pgserver` wheel, run as our own child process.

pgserver's high-level API daemonises the server through `pg_ctl`, which would outlive a
killed parent. We use its binaries and its root-user handling, but start `postgres`
ourselves with a parent-death signal, so Ctrl-C (or a SIGKILL of the parent) never leaves
a server behind. It listens on a Unix socket only: no TCP port to collide with.
"""

import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import quote

with warnings.catch_warnings():
    # pgserver asks platformdirs for a runtime dir at import time and warns without one.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from xerosync.devstack.processes import ManagedProcess, ProcessFailed

_SERVICE_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver's convention
_SOCKET_PORT = 5432  # only names the socket file; nothing listens on TCP


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, durable: bool = True, max_connections: int = 200) -> None:
        self.data_dir = data_dir
        self.durable = durable
        self.max_connections = max_connections
        self._user = _SERVICE_USER if os.geteuid() == 0 else None
        self._process: ManagedProcess | None = None

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir))}"

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    def start(self, *, timeout: float = 30.0) -> "EmbeddedPostgres":
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                    "-U",
                    "postgres",
                ]
            )
        settings = [
            "listen_addresses=",
            f"unix_socket_directories={self.socket_dir}",
            f"port={_SOCKET_PORT}",
            f"max_connections={self.max_connections}",
        ]
        if not self.durable:
            # Tests only: losing data on an OS crash is fine there, waiting for disks is not.
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        argv = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir)]
        for setting in settings:
            argv += ["-c", setting]
        self._process = ManagedProcess(
            "embedded PostgreSQL",
            argv,
            log_path=self.data_dir.parent / f"{self.data_dir.name}.log",
            user=self._user,
            # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions and stop
            # now, instead of SIGTERM's wait for every client to disconnect.
            stop_signal=signal.SIGINT,
        ).start()
        self._wait_ready(self._process, timeout)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=20)

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._user is None:
            return
        entry = ensure_user_exists(self._user)
        if entry is None:
            raise ProcessFailed(f"could not create the system user {self._user!r}")
        ensure_prefix_permissions(self.data_dir)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(  # noqa: S603 - fixed binaries from the pgserver wheel
            argv, capture_output=True, text=True, user=self._user, check=False
        )
        if result.returncode != 0:
            raise ProcessFailed(f"{Path(argv[0]).name} failed:\n{result.stderr or result.stdout}")

    def _wait_ready(self, process: ManagedProcess, timeout: float) -> None:
        """Ready when postmaster.pid's status line says so (what pg_ctl waits for)."""
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.running():
                raise process.failure(f"exited with code {process.poll()}")
            try:
                lines = pid_file.read_text().splitlines()
            except (FileNotFoundError, PermissionError):
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.05)
        raise process.failure(f"was not ready within {timeout:g}s")
