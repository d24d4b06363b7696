"""The pydantic configuration every contract model shares."""

from __future__ import annotations

from pydantic import ConfigDict

# Frozen (an event is a fact), unknown fields ignored (a later minor version may add optional ones),
# and built on first use: a contract model's validator and serializer are built when a process first
# validates or dumps one, not when the module is imported. Every service imports every contract (the
# union that parses any event names them all) but uses a few, and building them all cost each process
# about 1.5 MiB of memory at start-up with the services' own API models (issue 16's RSS target).
CONTRACT = ConfigDict(frozen=True, extra="ignore", defer_build=True)
