"""Click accounts by ``service_id``, for the callbacks (``AccountCopies``: kept by each replica until a
change is announced, decrypted only when changed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from providers_svc.domain.accounts import BoundAccount
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.services.account_copies import AccountCopies

log = logging.getLogger(__name__)

PROVIDER = "click"


@dataclass(frozen=True)
class ClickAccount:
    account: BoundAccount
    credentials: ClickCredentials


def click_credentials(account: BoundAccount) -> ClickCredentials | None:
    """The account's credentials as Click's protocol takes them; None when they are not (ids not numeric)."""
    try:
        return ClickCredentials.model_validate(dict(account.credentials))
    except ValidationError:
        return None


@dataclass
class ClickAccounts:
    """Built once per application (``create_app``); the cache lives and dies with it."""

    copies: AccountCopies

    async def by_service_id(self, service_id: int) -> list[ClickAccount]:
        """Every Click account (the simulator's included) with this ``service_id``: normally one."""
        found: list[ClickAccount] = []
        for account in await self.copies.of(PROVIDER):
            credentials = click_credentials(account)
            if credentials is None:
                # Stored as strings by the admin API; Click's ids are numbers. Never the values in the log.
                log.warning("click account %s has credentials Click cannot use (ids must be numbers)", account.id)
            elif credentials.service_id == service_id:
                found.append(ClickAccount(account, credentials))
        return found
