"""Real servers on 127.0.0.1 for the operations tests: luigid (with the shipped luigid.cfg), a
webhook receiver and an SMTP receiver, plus small synthetic NC drops."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LUIGID_CFG = REPO_ROOT / "config" / "cron" / "luigid.cfg"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def luigid_api(port: int, method: str, **data) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}", timeout=5) as resp:
        return json.loads(resp.read())["response"]


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def luigid_config(directory: Path, scheduler: dict | None = None) -> Path:
    """config/cron/luigid.cfg, or a copy of it in `directory` with these [scheduler] options changed."""
    if not scheduler:
        return LUIGID_CFG
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(LUIGID_CFG)
    for option, value in scheduler.items():
        parser.set("scheduler", option, str(value))
    path = directory / "luigid.cfg"
    with open(path, "w") as handle:
        parser.write(handle)
    return path


def start_luigid(directory: Path, scheduler: dict | None = None) -> tuple[subprocess.Popen, int]:
    """luigid on a free port of 127.0.0.1, reading luigi.cfg and config/cron/luigid.cfg as `make luigid` does
    (`scheduler`: [scheduler] options changed for this luigid, e.g. a short retry_delay)."""
    port = free_port()
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(luigid_config(directory, scheduler)))
    proc = subprocess.Popen(
        [str(BIN / "luigid"), "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(directory / "luigi-state.pickle"), "--logdir", str(directory)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            luigid_api(port, "task_list", status="DONE", upstream_status="", search="")
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("luigid did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class WebhookReceiver:
    """Collects the JSON bodies POSTed to http://127.0.0.1:<port>/hook."""

    def __init__(self):
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [body["event"] for body in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SMTPReceiver:
    """A minimal SMTP server (HELO/EHLO, MAIL, RCPT, DATA, QUIT) keeping each message's text."""

    def __init__(self):
        self.messages: list[str] = []
        messages = self.messages

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 localhost test SMTP\r\n")
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip().upper()
                    if command == "DATA":
                        self.wfile.write(b"354 end with .\r\n")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(data.decode(errors="replace"))
                        messages.append("".join(lines))
                        self.wfile.write(b"250 queued\r\n")
                    elif command == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_nc_drops(snapshots: list[date], voters: int = 300, seed: int = 3) -> None:
    """Synthetic NC drops (each the next week of the one before) and the TIGER data to geocode them."""
    from voterpipe import storage, synth
    from voterpipe.geocode.tiger import import_tiger_dir

    previous = None
    for snapshot in snapshots:
        synth.write_drop(state="nc", voters=voters, snapshot=snapshot, seed=seed, from_snapshot=previous)
        previous = snapshot
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")


class config_values:
    """`with config_values({("alerts", "webhook_url"): url}):` luigi.cfg options for a block."""

    def __init__(self, values: dict):
        self.values = values
        self.saved: dict = {}

    def __enter__(self):
        import luigi

        parser = luigi.configuration.get_config()
        for (section, option), value in self.values.items():
            self.saved[(section, option)] = parser.get(section, option, None)
            parser.set(section, option, str(value))
        luigi.task_register.Register.clear_instance_cache()
        return self

    def __exit__(self, *exc):
        import luigi

        parser = luigi.configuration.get_config()
        for (section, option), value in self.saved.items():
            if value is None:
                parser.remove_option(section, option)
            else:
                parser.set(section, option, value)
        luigi.task_register.Register.clear_instance_cache()


def voterpipe(*args: str, capsys=None) -> tuple[int, str]:
    """`voterpipe <args>` in this process: (exit code, what it printed)."""
    import luigi

    from voterpipe import cli

    luigi.task_register.Register.clear_instance_cache()
    code = cli.main(list(args))
    captured = capsys.readouterr() if capsys is not None else None
    return code, (captured.out + captured.err) if captured else ""


def status_json(state: str = "nc") -> dict:
    from voterpipe.ops.status import status

    return status(state)


def cells(report: dict, snapshot: date | str, state: str = "nc") -> dict[str, str]:
    """{stage: status} of one snapshot row."""
    day = snapshot.isoformat() if isinstance(snapshot, date) else snapshot
    return {stage: cell["status"] for stage, cell in report["states"][state][day].items()}
