"""Handing freed memory back to the system between the phases of a bounded stage: Arrow's pools
(mimalloc keeps freed pages for reuse, which numpy and pandas cannot use) and glibc's heap."""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa


def _glibc():
    """The C library when it is glibc (it has malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def release_memory() -> None:
    """Release the unused memory of pyarrow's default pool, of Arrow's other pools (compute
    kernels use them when pyarrow's default is replaced) and of glibc's heap, whose free pages
    between live blocks otherwise stay counted in the process's memory."""
    pools = {pa.default_memory_pool().backend_name: pa.default_memory_pool(), "system": pa.system_memory_pool()}
    try:
        pools["mimalloc"] = pa.mimalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without mimalloc
        pass
    for pool in pools.values():
        pool.release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
