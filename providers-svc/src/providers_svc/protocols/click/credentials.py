"""One Click merchant account's credentials (API.md "Provider accounts": the ``click`` credentials)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt


class ClickCredentials(BaseModel):
    """What Click issued to one merchant: the ids are numeric at Click; the secret signs both directions."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    service_id: PositiveInt
    merchant_id: PositiveInt
    merchant_user_id: PositiveInt
    # Kept out of repr so that logging a credentials object never prints the key.
    secret_key: str = Field(min_length=1, repr=False)
