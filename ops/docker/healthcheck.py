"""The image's HEALTHCHECK: exit 0 when this container's process answers ``GET /healthz`` with a 2xx.

Standard library only (the slim base has no curl). The port is the role's: ``HEALTHCHECK_PORT``, set by
the image to the service's port and by docker-compose.yml where a role listens elsewhere (providers-svc's
worker). A migration container has no listener; docker-compose.yml disables its health check.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = int(os.environ.get("HEALTHCHECK_PORT", "8000"))
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        # Loopback only, a fixed scheme: nothing here comes from outside the container.
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
