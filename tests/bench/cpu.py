"""CPU time per process group over a measured interval, from /proc (Linux only).

Throughput on a 2-core machine is a CPU budget shared by every process on the path (the services,
PostgreSQL, RabbitMQ, the load generator), so "ms of CPU per payment" per process says where the
budget goes, which payments/s alone cannot.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, parent pid, CPU seconds of user+system) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far per group: each named root pid with its descendants, plus every PostgreSQL
    backend and the RabbitMQ VM (``postgres``/``rabbitmq``) and everything else (``other``)."""
    table: dict[int, tuple[str, int, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = st
    roots = {pid: name for name, pid in groups.items()}
    totals = dict.fromkeys([*groups, "postgres", "rabbitmq", "other"], 0.0)
    for pid, (comm, _, cpu) in table.items():
        totals[_group(pid, comm, table, roots)] += cpu
    return totals


def _group(pid: int, comm: str, table: dict[int, tuple[str, int, float]], roots: dict[int, str]) -> str:
    cursor = pid
    while cursor in table:
        if cursor in roots:
            return roots[cursor]
        cursor = table[cursor][1]
    if comm.startswith("postgres") or comm.startswith("postmaster"):
        return "postgres"
    if comm.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
        return "rabbitmq"
    return "other"


def per_unit_ms(before: dict[str, float], after: dict[str, float], units: float) -> dict[str, float]:
    """Milliseconds of CPU per unit of work, per group, with the total."""
    out = {k: round((after[k] - before[k]) * 1000 / units, 3) for k in after if units}
    out["total"] = round(sum(v for k, v in out.items() if k != "other"), 3)
    return out


def describe(per_ms: dict[str, float], keys: Iterable[str] | None = None) -> str:
    keys = list(keys) if keys is not None else [k for k in per_ms if per_ms[k] >= 0.005]
    return ", ".join(f"{k} {per_ms[k]:.2f}" for k in keys)
