"""The tenant dashboard under ``/dashboard``: server-rendered pages over the gateway's public API."""
