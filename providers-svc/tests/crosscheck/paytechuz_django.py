"""paytechuz's Click ``sign_string`` check and Octo callback signature check, run in a process of their own.

Both live only in paytechuz's Django webhook views (``integrations/django/webhooks/{click,octo}.py``), whose
modules need a configured Django with paytechuz's app installed. Django is here already (clickuz needs it),
not paytechuz's extras; configuring it inside the test process would collide with the clickuz tests'
settings (``tests/protocols/click/test_signing.py``), hence a subprocess. Nothing is copied: the views'
own methods run, on a stand-in ``self``; no database, no request, no network.

Reads ``{"click": [...], "octo": [...]}`` on stdin and writes one boolean per case, in order, as JSON.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["paytechuz.integrations.django"], PAYTECHUZ={})
django.setup()

from paytechuz.core.exceptions import PermissionDenied  # noqa: E402
from paytechuz.integrations.django.webhooks.click import ClickWebhook  # noqa: E402
from paytechuz.integrations.django.webhooks.octo import OctoWebhook  # noqa: E402


def click_accepts(case: dict[str, Any]) -> bool:
    view = SimpleNamespace(service_id=case["service_id"], secret_key=case["secret_key"])
    try:
        ClickWebhook._check_auth(view, case["params"])
    except PermissionDenied:
        return False
    return True


def octo_accepts(case: dict[str, Any]) -> bool:
    return bool(OctoWebhook._verify_signature(**case))


def main() -> None:
    cases = json.load(sys.stdin)
    json.dump(
        {"click": [click_accepts(c) for c in cases["click"]], "octo": [octo_accepts(c) for c in cases["octo"]]},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
