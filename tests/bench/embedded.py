"""What the embedded mode costs: start-up time (a new data directory, then one that exists), memory
(the platform process and every process it started or left running, such as its PostgreSQL server)
and disk. Run from the repository root: ``.venv/bin/python tests/bench/embedded.py``.

Memory is proportional set size (PSS) from ``/proc/<pid>/smaps_rollup``: a page shared by several
processes (PostgreSQL's shared buffers, the binaries) is split between them, so the sum over the
processes is what the machine pays. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from billing_runtime.testing import free_port

BIN = Path(sys.executable).parent
SERVICES = ("GATEWAY", "CHECKOUT", "PAYMENTS", "PROVIDERS", "WEBHOOKS")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after its last ")" are fixed.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def _postmasters(data: Path) -> list[int]:
    """PostgreSQL servers whose data directory is under ``data`` (they detach from the platform)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"postgres") and any(str(data).encode() in a for a in cmdline):
            found.append(int(entry.name))
    return found


def _pss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _disk_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def start(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    ports = {k: free_port() for k in SERVICES}
    env = {**os.environ, "BILLING_DATA_DIR": str(data), **{f"{k}_PORT": str(v) for k, v in ports.items()}}
    began = time.monotonic()
    proc = subprocess.Popen([str(BIN / "billing-embedded")], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    pending = [f"http://127.0.0.1:{p}/{'healthz' if k == 'GATEWAY' else 'readyz'}" for k, p in ports.items()]
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"billing-embedded exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(pending[0], timeout=2) as r:
                if r.status == 200:
                    pending.pop(0)
                    continue
        except OSError:
            pass
        if time.monotonic() - began > 120:
            raise RuntimeError(f"not ready after 120 s; see {log}")
        time.sleep(0.02)
    return proc, time.monotonic() - began


def stop(proc: subprocess.Popen[bytes]) -> float:
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=3, help="starts on an existing data directory")
    args = parser.parse_args()
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    log = out / "embedded.log"
    log.unlink(missing_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    data = base / "data"
    try:
        proc, cold = start(data, log)
        time.sleep(2)  # past start-up: the relays and sweepers have run once
        platform = _tree(proc.pid)
        servers = [p for pm in _postmasters(data) for p in _tree(pm) if p not in platform]
        memory = {
            "platform_process_mib": round(sum(_pss_mib(p) for p in platform), 1),
            "database_server_mib": round(sum(_pss_mib(p) for p in servers), 1),
            "database_processes": len(servers),
        }
        memory["total_mib"] = round(memory["platform_process_mib"] + memory["database_server_mib"], 1)
        stops = [stop(proc)]
        warm = []
        for _ in range(args.starts):
            proc, seconds = start(data, log)
            warm.append(round(seconds, 2))
            stops.append(stop(proc))
        left = _postmasters(data)
        summary = {
            "cold_start_s": round(cold, 2),
            "warm_start_s": warm,
            "stop_s": [round(s, 2) for s in stops],
            "memory_pss": memory,
            "disk_mib": round(_disk_mib(data), 1),
            "servers_left_running": len(left),
        }
        (out / "embedded.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
    finally:
        for pid in _postmasters(data):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
