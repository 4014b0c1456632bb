"""Merge geocode cache parts into one in bounded memory: which rows survive (the newest of each
key) is decided key range by key range from spilled keys, then the parts are streamed through."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import schema, storage
from voterpipe.addresses.spill import BATCH_ROWS, Spill
from voterpipe.geocode.bucketed import _prefixes, key_ranges, split

RANGE_ROWS = 500_000  # cache rows per key range
ROW = "cache_row"


def _keys(paths: list[Path]):
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=["address_key"]):
            yield pa.Table.from_batches([batch])


def surviving_rows(paths: list[Path], spill_dir: Path) -> np.ndarray:
    """keep[i]: whether row i of the parts (in order) is the last row of its address_key."""
    histogram = np.zeros(65536, dtype=np.int64)
    total = 0
    for table in _keys(paths):
        histogram += np.bincount(_prefixes(table["address_key"].combine_chunks()), minlength=65536)
        total += table.num_rows
    bucket_of_prefix = key_ranges(histogram, RANGE_ROWS)
    spills = [Spill(Path(spill_dir) / f"keys-{b}.arrow") for b in range(int(bucket_of_prefix.max()) + 1)]
    keep = np.zeros(total, dtype=bool)
    try:
        split(_keys(paths), "address_key", bucket_of_prefix, spills, ROW)
        for spill in spills:
            table = spill.read_all()
            if table is None:
                continue
            keys = table["address_key"].to_pandas()
            last = ~keys.duplicated(keep="last").to_numpy()
            keep[table[ROW].to_numpy()[last]] = True
    finally:
        for spill in spills:
            spill.close()
            spill.path.unlink(missing_ok=True)
    return keep


def merge_parts(paths: list[Path], output: Path) -> int:
    """Write the newest row of every key of `paths` (oldest first) to `output` atomically, in
    the parts' row order; return the rows written."""
    with tempfile.TemporaryDirectory(prefix=".compact-", dir=Path(output).parent) as spill_dir:
        keep = surviving_rows(paths, Path(spill_dir))
    start = written = 0
    with storage.atomic_file(output, "wb") as handle:
        with pq.ParquetWriter(handle, schema.GEOCODES, compression=storage.PARQUET_COMPRESSION) as writer:
            for path in paths:
                for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS):
                    table = schema.conform(pa.Table.from_batches([batch]), schema.GEOCODES)
                    chosen = table.filter(pa.array(keep[start:start + table.num_rows]))
                    start += table.num_rows
                    if chosen.num_rows:
                        writer.write_table(chosen)
                        written += chosen.num_rows
    return written
