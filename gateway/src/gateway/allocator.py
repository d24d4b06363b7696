"""Large allocations given back to the system when freed.

Each argon2 verification allocates its ``memory_cost`` (19 MiB) in one block, on a hasher thread, and
frees it. glibc's malloc serves a block that large with its own ``mmap`` and unmaps it on free, but its
threshold for doing so adapts: after the first such block is freed it rises above the block's size, and
every later hash is carved from the thread's heap, which keeps the memory when it is freed. The gateway
then holds another 19 MiB of RSS for good per hasher thread after its first few token requests (measured:
87 → 106 MiB after five verifications). Setting the threshold fixes it, and stops its adapting.

Only glibc has ``mallopt``'s ``M_MMAP_THRESHOLD``; elsewhere (musl, macOS) this does nothing."""

from __future__ import annotations

import ctypes
import sys

# glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
# Below argon2's smallest useful memory cost, far above Python's own allocations (its arenas are 1 MiB).
DEFAULT_THRESHOLD = 4 * 1024 * 1024


def return_large_allocations(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Serve every allocation of ``threshold`` bytes or more with its own mapping, unmapped on free;
    True when the C library took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
