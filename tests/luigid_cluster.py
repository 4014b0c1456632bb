"""A small Luigi cluster on 127.0.0.1 (issue 18): one real `luigid` on a free port and N `luigi`
worker processes against it, each with its own scratch directory, log file and process group, as
separate machines would be. Used by tests/test_scale_out.py and bench/bench_scale.py.

The workers run as Luigi assistants (`--assistant`): each also schedules the task it is given, and
any of them runs any runnable task. Without it, the stages that EnrichInOrder adds as a dynamic
dependency belong to the one worker that ran it; if that worker dies, no other worker may take them
and the run never ends (measured: the survivors waited with BuildHouseholds PENDING). An assistant
does not exit by itself: `finish()` waits for luigid to mark the top task DONE, then sends SIGUSR1
(Luigi's "finish running tasks, take no new ones")."""

from __future__ import annotations

import collections
import contextlib
import configparser
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import ops_servers as ops

# what a scale-out luigid changes: a dead worker's task goes back to the pool within seconds
FAST_SCHEDULER = {"worker_disconnect_delay": 3, "retry_delay": 2, "prune_on_get_work": "true",
                  "remove_delay": 3600, "retry_count": 6, "disable_window": 3600}
# luigi's worker log: "... Worker(...) running   ImportSnapshot(state=nc, snapshot=2026-11-01)"
EVENT = re.compile(r"\) (running|done|failed)\s+(\w+\(.*\))\s*$")
RUN_TIMEOUT = 600


@dataclass
class Worker:
    """One `luigi --module voterpipe.tasks ...` process leading its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path
    scratch: Path
    assistant: bool = True
    started: float = field(default_factory=time.monotonic)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[tuple[str, str]]:
        """(event, task) for each running/done/failed line of its log, in order."""
        found = []
        for line in self.log().splitlines():
            match = EVENT.search(line)
            if match:
                found.append((match.group(1), match.group(2)))
        return found

    def running_now(self) -> str | None:
        """The task it started last and has not finished, if any."""
        open_tasks: list[str] = []
        for event, task in self.events():
            if event == "running":
                open_tasks.append(task)
            elif task in open_tasks:
                open_tasks.remove(task)
        return open_tasks[-1] if open_tasks else None

    def kill(self) -> None:
        """SIGKILL the worker and whatever it forked (a machine that died)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


class Cluster:
    """`with Cluster(directory) as cluster: cluster.start_workers(3, ["EnrichStates", "--states", "nc,oh"], env)`."""

    def __init__(self, directory: Path, scheduler: dict | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.luigid, self.port = ops.start_luigid(self.directory, {**FAST_SCHEDULER, **(scheduler or {})})
        self.workers: list[Worker] = []

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_config(self, settings: dict[str, dict] | None = None) -> Path:
        """The workers' LUIGI_CONFIG_PATH file (read after luigi.cfg): this luigid, keep-alive, and
        `settings` ({section: {option: value}}, e.g. the warehouse)."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_dict({
            "core": {"default-scheduler-host": "127.0.0.1", "default-scheduler-port": str(self.port),
                     "no_lock": "true"},
            "worker": {"keep_alive": "true", "ping_interval": "1", "wait_interval": "0.5", "wait_jitter": "0.5"}})
        parser.read_dict({section: {k: str(v) for k, v in options.items()}
                          for section, options in (settings or {}).items()})
        path = self.directory / "worker.cfg"
        with open(path, "w") as handle:
            parser.write(handle)
        return path

    def start_workers(self, count: int, task_args: list[str], env: dict[str, str],
                      settings: dict[str, dict] | None = None, assistant: bool = True) -> list[Worker]:
        """`count` more workers, each running `luigi --module voterpipe.tasks <task_args>` (as an
        assistant unless told otherwise: a plain worker exits once its own graph is done)."""
        config = self.worker_config(settings)
        started = []
        for _ in range(count):
            name = f"worker{len(self.workers) + 1}"
            scratch = self.directory / name / "scratch"
            scratch.mkdir(parents=True, exist_ok=True)
            log_path = self.directory / name / "worker.log"
            child_env = {**os.environ, **env, "LUIGI_CONFIG_PATH": str(config),
                         "VOTERPIPE_SCRATCH": str(scratch), "PYTHONUNBUFFERED": "1"}
            with open(log_path, "w") as log:
                process = subprocess.Popen(
                    [str(ops.BIN / "luigi"), "--module", "voterpipe.tasks", *task_args,
                     *(["--assistant"] if assistant else [])],
                    cwd=ops.REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            worker = Worker(name, process, log_path, scratch, assistant)
            self.workers.append(worker)
            started.append(worker)
        return started

    def wait_until(self, condition, timeout: float = RUN_TIMEOUT, interval: float = 0.2) -> bool:
        """Poll `condition()` until true (True) or every worker has exited (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if all(w.process.poll() is not None for w in self.workers):
                return bool(condition())
            time.sleep(interval)
        raise TimeoutError(f"condition not met in {timeout}s")

    def wait(self, timeout: float = RUN_TIMEOUT) -> dict[str, int]:
        """Every worker's exit code, by name, once all have exited."""
        deadline = time.monotonic() + timeout
        return {w.name: w.wait(max(1.0, deadline - time.monotonic())) for w in self.workers}

    def settled(self, top_family: str) -> str | None:
        """'done' once luigid has the top task DONE; 'disabled' once some task is DISABLED and
        nothing runs (its downstream would wait for ever); None while work goes on."""
        if any(task["name"] == top_family for task in self.scheduler_tasks("DONE").values()):
            return "done"
        if self.scheduler_tasks("DISABLED") and not self.scheduler_tasks("RUNNING"):
            return "disabled"
        return None

    def finish(self, top_family: str, timeout: float = RUN_TIMEOUT) -> tuple[str, dict[str, int]]:
        """Wait until the run settles (see settled()), let the live workers phase out (SIGUSR1),
        and return how it settled and every worker's exit code."""
        outcome: dict[str, str] = {}

        def settled() -> bool:
            outcome["how"] = self.settled(top_family)
            return outcome["how"] is not None

        self.wait_until(settled, timeout=timeout, interval=0.5)
        for worker in self.workers:
            # a plain worker exits by itself; once past its run loop, Luigi's SIGUSR1 handler is gone
            if worker.assistant and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGUSR1)
        return outcome.get("how") or "workers exited", self.wait(timeout=60)

    def task_events(self, workers: list[Worker] | None = None) -> dict[str, collections.Counter]:
        """{'running' | 'done' | 'failed': Counter(task -> times)} over the workers' logs."""
        counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for worker in workers if workers is not None else self.workers:
            for event, task in worker.events():
                counts[event][task] += 1
        return counts

    def scheduler_tasks(self, status: str) -> dict[str, dict]:
        """luigid's /api/task_list for one status (DONE, FAILED, PENDING, RUNNING, DISABLED)."""
        return ops.luigid_api(self.port, "task_list", status=status, upstream_status="", search="")

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.kill()
        ops.stop(self.luigid)

    def logs(self, tail: int = 3000) -> str:
        """The end of every worker's log, for an assertion message."""
        return "\n".join(f"--- {w.name} (exit {w.process.poll()})\n{w.log()[-tail:]}" for w in self.workers)


class TcpProxy:
    """127.0.0.1:<port> forwarding to 127.0.0.1:<upstream>. close() refuses new connections and cuts
    the open ones, as an endpoint that went away; reopen() listens on the same port again. The
    server behind it (moto keeps its objects in memory) runs on untouched."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = ops.free_port()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.reopen()

    def reopen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                if listener.fileno() == -1:
                    return
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(source, sink)

    def _cut(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self._lock:
                self._connections.discard(sock)

    def close(self) -> None:
        if self._listener is not None:
            self._cut(self._listener)
            self._listener = None
        with self._lock:
            open_now = list(self._connections)
        self._cut(*open_now)
