"""The embedded mode's PostgreSQL server on data directories of the tests' own: started, reachable only
on its socket, a database per service created once, stopped; a server a killed platform left behind
taken over; one platform per data directory; a socket path that would not fit moved out of it."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from billing_embedded.database import DatabaseServer, DataDirectoryInUse, attached_server, running_server

pytestmark = pytest.mark.slow  # each test starts a PostgreSQL server (about a second)


def _pid(server: DatabaseServer) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


async def _databases(server: DatabaseServer) -> set[str]:
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        return {row["datname"] for row in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    leftover = DatabaseServer(data)
    if leftover.running():  # a test that failed half-way: never leave a server behind
        leftover._pg_ctl("stop", "-m", "immediate")


class TestRunningServer:
    async def test_starts_creates_each_database_once_and_stops(self, data_dir: Path) -> None:
        with running_server(data_dir) as server:
            assert server.running()
            server.create_databases(["payments", "webhooks"])
            server.create_databases(["payments", "webhooks"])  # idempotent
            assert {"payments", "webhooks"} <= await _databases(server)
            # Only on its socket, in a folder of its own user's alone.
            assert stat.S_IMODE(server.socket_dir.stat().st_mode) == 0o700
            settings = (server.pgdata / "postmaster.pid").read_text().splitlines()
            assert settings[3] == "5432" and settings[4] == str(server.socket_dir) and settings[5] == ""
        assert not server.running()
        assert not (data_dir / "postgres" / "postmaster.pid").exists()

    async def test_data_survives_a_restart(self, data_dir: Path) -> None:
        with running_server(data_dir) as server:
            server.create_databases(["payments"])
            conn = await asyncpg.connect(server.dsn("payments"))
            await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
            await conn.close()
        with running_server(data_dir) as server:
            conn = await asyncpg.connect(server.dsn("payments"))
            assert await conn.fetchval("SELECT v FROM kept") == "yes"
            await conn.close()

    def test_a_server_left_running_is_stopped_and_started_afresh(self, data_dir: Path) -> None:
        # What a platform killed with SIGKILL leaves: the server runs, nobody holds the lock.
        killed = DatabaseServer(data_dir)
        killed.lock()
        killed.start()
        left = _pid(killed)
        killed.unlock()
        with running_server(data_dir) as server:
            assert server.running()
            assert _pid(server) != left
        assert not psutil.pid_exists(left) or psutil.Process(left).status() == psutil.STATUS_ZOMBIE


class TestOnePlatformPerDataDirectory:
    def test_a_second_lock_is_refused_naming_the_directory(self, tmp_path: Path) -> None:
        first = DatabaseServer(tmp_path)
        first.lock()
        try:
            with pytest.raises(DataDirectoryInUse, match=str(tmp_path.resolve())):
                DatabaseServer(tmp_path).lock()
        finally:
            first.unlock()
        second = DatabaseServer(tmp_path)
        second.lock()  # free again once the first let go
        second.unlock()

    def test_a_command_attaches_to_the_running_platforms_server(self, data_dir: Path) -> None:
        with running_server(data_dir) as platform:
            pid = _pid(platform)
            with attached_server(data_dir) as command:
                assert _pid(command) == pid
            assert platform.running()  # the command left the platform's server alone
        with attached_server(data_dir) as command:  # no platform: started for the command, then stopped
            assert command.running()
        assert not command.running()

    def test_start_needs_the_lock(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError, match="lock"):
            DatabaseServer(tmp_path).start()


class TestSocketPath:
    def test_inside_the_data_directory_when_it_fits(self, tmp_path: Path) -> None:
        server = DatabaseServer(tmp_path)
        assert server.socket_dir == tmp_path.resolve() / "socket"
        assert server.url("payments") == f"postgresql+asyncpg://postgres@/payments?host={tmp_path.resolve()}/socket"

    def test_a_path_too_long_for_a_socket_moves_to_the_temporary_folder(self, tmp_path: Path) -> None:
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        server = DatabaseServer(deep)
        assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 100
        assert server.socket_dir.name.startswith("billing-pg-")
        assert server.socket_dir == DatabaseServer(deep).socket_dir  # stable for one directory
        assert server.socket_dir != DatabaseServer(tmp_path / "other").socket_dir

    async def test_a_server_with_a_long_data_path_serves_on_the_moved_socket(self, tmp_path: Path) -> None:
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        try:
            with running_server(deep) as server:
                assert await asyncio.wait_for(_databases(server), 10) >= {"postgres"}
        finally:
            leftover = DatabaseServer(deep)
            if leftover.running():
                leftover._pg_ctl("stop", "-m", "immediate")
