"""A throwaway PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temp dir.

As root the server runs as the `postgres` OS user (PostgreSQL refuses to run as root). The
superuser `voterpipe` gets a password and TCP connections require it (scram-sha-256), so the
tests exercise real password authentication and can check that the password never leaks.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "voterpipe"

# Settings for a disposable server. wal_level=minimal lets COPY into a table created in the same
# transaction skip WAL (what the warehouse loader does); the rest only trades crash safety of a
# throwaway cluster for speed and does not change what the tests check.
THROWAWAY_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "2GB",
    "shared_buffers": "128MB",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or no way to run them here; the message says why."""


@dataclass
class PostgresServer:
    directory: Path
    port: int
    password: str
    bin_dir: Path
    run_as: list[str] = field(default_factory=list)
    database: str = "postgres"

    @property
    def dsn(self) -> str:
        return (f"host=127.0.0.1 port={self.port} dbname={self.database} "
                f"user={SUPERUSER} password={self.password}")

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.directory / "data"),
             "-m", "immediate", "-w"],
            capture_output=True, text=True, timeout=60,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def find_bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "pg_ctl").exists() and (directory / "initdb").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(settings: dict[str, str] | None = None) -> PostgresServer:
    """Start a fresh cluster on a free port; raise PostgresUnavailable with a reason if we cannot."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("no pg_ctl/initdb on PATH or in /usr/lib/postgresql/*/bin")
    run_as: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="voterpipe-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("running as root but runuser is not available")
        try:
            import pwd

            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(directory, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no `postgres` OS user") from None
        os.chown(directory, account.pw_uid, account.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
        owner = (account.pw_uid, account.pw_gid)
    else:
        owner = None

    password = "pw-" + secrets.token_hex(12)
    pwfile = directory / "pwfile"
    pwfile.write_text(password + "\n")
    if owner:
        os.chown(pwfile, *owner)
    data = directory / "data"
    init = subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"],
        capture_output=True, text=True, timeout=120,
    )
    pwfile.unlink()
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")

    port = _free_port()
    conf = {"port": str(port), "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{directory}'", **THROWAWAY_SETTINGS, **(settings or {})}
    with open(data / "postgresql.conf", "a") as handle:
        for key, value in conf.items():
            handle.write(f"{key} = {value}\n")
    start = subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "60",
         "-l", str(directory / "server.log")],
        capture_output=True, text=True, timeout=90,
    )
    if start.returncode != 0:
        log = (directory / "server.log").read_text(errors="replace")[-800:] if (directory / "server.log").exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log}")
    server = PostgresServer(directory=directory, port=port, password=password, bin_dir=bin_dir,
                            run_as=run_as)
    _wait_until_accepting(server)
    return server


def _wait_until_accepting(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.dsn).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable("server started but does not accept connections") from None
            time.sleep(0.2)


def query(dsn: str, text: str, params=None) -> list[tuple]:
    """Run one statement on its own connection and return its rows."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall()
    finally:
        conn.close()
