"""Spill files for stages that work in bounded buckets: Arrow IPC runs written batch by batch and
read back without memory-mapping (mapped pages would stay resident), merged in row order."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from voterpipe.storage import pid_alive

BATCH_ROWS = 65_536
RUN_BATCH_ROWS = 8_192  # a merge holds one batch of every run: keep them small


@contextlib.contextmanager
def spill_directory(parent: Path) -> Iterator[Path]:
    """A fresh directory for one run's spill files under `parent`, removed afterwards; first
    removes the directories of runs on this machine whose process is gone (killed mid-run)."""
    parent = Path(parent)
    host = socket.gethostname()
    for old in parent.glob(f".spill-{host}-*"):
        pid = old.name[len(f".spill-{host}-"):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f".spill-{host}-{os.getpid()}-", dir=parent) as directory:
        yield Path(directory)


class Spill:
    """Appends tables of one schema to an IPC file; the file is created on the first rows."""

    def __init__(self, path: Path, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        self.batch_rows = batch_rows
        self.rows = 0
        self._sink = None
        self._writer = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_file(self._sink, table.schema)
        self._writer.write_table(table, max_chunksize=self.batch_rows)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows written, a batch at a time (call close() first)."""
        if not self.rows:
            return
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def read_all(self) -> pa.Table | None:
        batches = list(self.batches())
        return pa.Table.from_batches(batches) if batches else None


class SortedRun:
    """Reads a spill whose `column` (int64) ascends, in pieces below a growing limit."""

    def __init__(self, spill: Spill, column: str):
        self.column = column
        self._batches = spill.batches()
        self._pending: pa.Table | None = None

    def below(self, limit: int) -> list[pa.Table]:
        """The next rows whose `column` is below `limit`."""
        pieces = []
        while True:
            if self._pending is None:
                batch = next(self._batches, None)
                if batch is None:
                    return pieces
                self._pending = pa.Table.from_batches([batch])
            values = self._pending[self.column].to_numpy()
            cut = int(np.searchsorted(values, limit))
            pieces.append(self._pending.slice(0, cut))
            if cut < len(values):
                self._pending = self._pending.slice(cut)
                return pieces
            self._pending = None


def merge_runs(spills: list[Spill], column: str, end: int, window: int) -> Iterator[pa.Table]:
    """The rows of several runs (each ascending in `column`, values below `end`, none shared)
    as tables in ascending `column` order, `window` values at a time; `column` is dropped."""
    runs = [SortedRun(s, column) for s in spills if s.rows]
    if not runs:
        return
    for limit in range(window, end + window, window):
        pieces = [p for run in runs for p in run.below(limit) if p.num_rows]
        if not pieces:
            continue
        table = pa.concat_tables(pieces)
        order = np.argsort(table[column].to_numpy(), kind="stable")
        yield table.take(pa.array(order)).drop_columns([column])
