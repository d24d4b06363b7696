"""Payme's Merchant API (PROTOCOLS.md §2), the merchant side, as a pure protocol core (no I/O)."""
