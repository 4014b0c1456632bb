"""`make luigid` starts luigid in the background on 127.0.0.1 only, with its state, log and pid
under VAR_DIR; `make luigid-stop` stops it by that pid and it saves its state."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(target: str, port: int, var_dir: Path) -> subprocess.CompletedProcess:
    # -o: the venv stamp counts as up to date, so no reinstall when setup.cfg is newer
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", target,
                           f"LUIGID_PORT={port}", f"VAR_DIR={var_dir}"],
                          cwd=ops.REPO_ROOT, capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has stopped; only its parent's wait is missing


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of the TCP sockets listening on `port` (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        for line in (path.read_text().splitlines()[1:] if path.exists() else ()):
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:  # IPv4, little-endian bytes
                    found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    found.append(f"ipv6:{address}")
    return found


def _other_addresses() -> list[str]:
    """This machine's addresses that are not loopback (`hostname -I`)."""
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []
    return [word for word in words if not word.startswith("127.") and word != "::1"]


def _refused(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        try:
            sock.connect((address, port))
        except OSError:
            return True
    return False


def _wait_until(condition, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_make_luigid_listens_on_loopback_only_and_luigid_stop_ends_it(tmp_path):
    port, var_dir = ops.free_port(), tmp_path / "var"
    pidfile = var_dir / "luigid" / "luigid.pid"
    started = _make("luigid", port, var_dir)
    assert started.returncode == 0, started.stdout + started.stderr
    pid = int(pidfile.read_text())
    try:
        assert f"luigid pid {pid}: http://127.0.0.1:{port}/static/visualiser/index.html" in started.stdout
        assert _alive(pid) and b"luigid" in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert _wait_until(lambda: not _refused("127.0.0.1", port))
        assert ops.luigid_api(port, "task_list", status="RUNNING", upstream_status="", search="") == {}
        assert "# TYPE" in ops.metrics_text(port)  # config/cron/luigid.cfg's metrics collector is on

        assert _listening_addresses(port) == ["127.0.0.1"]
        for address in _other_addresses():  # 192.0.2.2 and fd00::2 here
            assert _refused(address, port), f"luigid answers on {address}"
        assert (var_dir / "log" / "luigi-server.log").is_file()

        stopped = _make("luigid-stop", port, var_dir)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert _wait_until(lambda: not _alive(pid)), f"luigid pid {pid} still runs after make luigid-stop"
        assert not pidfile.exists()
        assert (var_dir / "luigid" / "state.pickle").is_file()  # saved on SIGTERM
        assert _refused("127.0.0.1", port) and _listening_addresses(port) == []

        again = _make("luigid-stop", port, var_dir)
        assert again.returncode != 0
        assert f"no {pidfile}: luigid is not running from here" in again.stdout
    finally:
        if _alive(pid):  # only the luigid this test started
            os.kill(pid, signal.SIGKILL)
