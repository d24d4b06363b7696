"""The hasher's memory goes back to the system after each verification (``gateway.allocator``): measured
in a fresh interpreter, whose RSS is this test's alone."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.allocator import return_large_allocations

_PROBE = """
import asyncio, json
from argon2 import PasswordHasher
from gateway.allocator import return_large_allocations
from gateway.tenant_secrets import SecretHasher

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def main(pinned):
    if not pinned:  # what the process did before: the threshold left to adapt
        import gateway.tenant_secrets as module
        module.return_large_allocations = lambda: False
    hasher = SecretHasher(PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1))
    hasher.start()
    before = rss_kib()
    stored = await hasher.hash("sk_probe")
    for _ in range(6):
        await hasher._run(hasher._hasher.verify, stored, "sk_probe")
    after = rss_kib()
    hasher.close()
    print(json.dumps({"grew_kib": after - before}))

asyncio.run(main(PINNED))
"""


def _growth_kib(pinned: bool) -> int:
    code = _PROBE.replace("PINNED", repr(pinned))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    return int(json.loads(out.stdout)["grew_kib"])


def test_verifications_leave_no_hash_memory_resident() -> None:
    if not sys.platform.startswith("linux"):
        # No glibc (nor /proc to measure with): the setting is refused, and nothing else changes.
        assert return_large_allocations() is False
        return
    # Without the setting each hasher thread keeps a 19 MiB block after its first verifications.
    assert _growth_kib(pinned=False) > 15 * 1024
    assert _growth_kib(pinned=True) < 4 * 1024
