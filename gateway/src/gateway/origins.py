"""A tenant's allowed origins: the sites that may frame its hosted checkout (CSP ``frame-ancestors``)
and receive the embedded checkout's messages (``postMessage``). Each is an exact origin,
``scheme://host[:port]``, in the one spelling browsers compare: lower case, no default port."""

from __future__ import annotations

import ipaddress
import re

MAX_ALLOWED_ORIGINS = 20
MAX_ORIGIN_LENGTH = 255

# An origin as written: scheme, host, optional port, at most one trailing slash (a pasted site URL).
_ORIGIN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^/:?#@\[\]\s]+)(?::(?P<port>[0-9]{1,5}))?/?$")
# DNS names only: CSP host sources cannot carry IPv6 literals, and an IDN must come in its xn-- form
# so that the stored value is the one the browser sends.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def normalise_origin(value: str) -> str:
    """``value`` as a normalised origin, or ``ValueError`` saying what is wrong with it."""
    if len(value) > MAX_ORIGIN_LENGTH:
        raise ValueError(f"must be at most {MAX_ORIGIN_LENGTH} characters")
    match = _ORIGIN.fullmatch(value.strip())
    if match is None:
        raise ValueError("must be an origin, scheme://host[:port], with no path, query or wildcard")
    scheme = match["scheme"].lower()
    host = match["host"].lower().rstrip(".")
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("must use https (or http for a loopback host)")
    if not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError("must name its host in ASCII (an international name in its xn-- form)")
    if scheme == "http" and not _is_loopback(host):
        raise ValueError("must use https; http is allowed only for localhost and 127.0.0.0/8")
    port = _DEFAULT_PORTS[scheme] if match["port"] is None else int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError("must have a port between 1 and 65535")
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def normalise_origins(values: list[str]) -> list[str]:
    """Each normalised, duplicates dropped, in the order given."""
    normalised: list[str] = []
    for value in values:
        origin = normalise_origin(value)
        if origin not in normalised:
            normalised.append(origin)
    return normalised


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False
