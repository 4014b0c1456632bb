"""Threads that overlap the importer's work: a Parquet writer fed through a short queue, and a
read-ahead iterator. Both keep their input's order, so output bytes never depend on timing."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import pyarrow as pa

from voterpipe import storage

T = TypeVar("T")
_DONE = object()


class BackgroundWriter:
    """A Parquet writer fed through a short queue, so compression overlaps the next block's parsing.

    One thread writes the tables in the order they were given, so the file's bytes do not depend
    on timing. A write error is raised in the calling thread at the next write or at close().
    """

    def __init__(self, path: Path, table_schema: pa.Schema, per_chunk: bool = False):
        self._writer = storage.parquet_writer(path, table_schema)
        # per_chunk: the tables given between two flush() calls are written as one (one row group),
        # so reading a chunk in pieces writes the same file as reading it whole.
        self._per_chunk = per_chunk
        self._held: list = []
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"write-{Path(path).name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            table = self._queue.get()
            if table is _DONE:
                return
            if self._error is None:
                try:
                    # a callable is work left to this thread (e.g. the voters' extra map), still in order
                    self._writer.write_table(_one_table(table))
                except BaseException as exc:  # re-raised in the importing thread
                    self._error = exc

    def write_table(self, table: "pa.Table | Callable[[], pa.Table]") -> None:
        if self._error is not None:
            raise self._error
        if self._per_chunk:
            self._held.append(table)
        else:
            self._queue.put(table)

    def flush(self) -> None:
        """Write the tables held since the last flush (per_chunk) as one table."""
        if self._error is not None:
            raise self._error
        if self._held:
            held, self._held = self._held, []
            self._queue.put(held)

    def close(self) -> None:
        if self._error is None:
            self.flush()
        self._queue.put(_DONE)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error


def _one_table(item) -> pa.Table:
    """A table, a callable giving one (work left to the writer's thread), or a list of these (a
    chunk's pieces) as one single-chunk table: written the same as had the chunk been read whole."""
    if callable(item):
        return item()
    if isinstance(item, list):
        tables = [_one_table(part) for part in item]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()
    return item


def prefetch(iterable: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate `iterable` in a background thread, `depth` items ahead (file reading and decoding
    overlap the parsing of the previous block). Stopping early stops the thread too."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("done", None))
        except BaseException as exc:
            items.put(("error", exc))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
