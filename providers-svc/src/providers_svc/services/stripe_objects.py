"""Reads of the Stripe projections: a tenant's own objects (in its mode), or every object for the
operator (API: ``api/stripe_objects.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from billing_contracts.problems import FieldError
from billing_runtime.problems import ProblemError

from providers_svc.db.stripe_objects import ListFilter, Position, Scope, StripeObjectReads, StripeObjectRow
from providers_svc.services.uow import UowFactory


@dataclass(frozen=True)
class ListRequest:
    kind: str
    scope: Scope
    filters: ListFilter
    limit: int
    starting_after: str | None = None
    ending_before: str | None = None


async def list_objects(uow: UowFactory, request: ListRequest) -> tuple[list[StripeObjectRow], bool]:
    """A page of objects newest first, and whether more follow in the direction read."""
    async with uow() as unit:
        reads = StripeObjectReads(unit.session, request.kind, request.scope)
        after = await _position(reads, request.starting_after, "starting_after")
        before = await _position(reads, request.ending_before, "ending_before")
        rows = await reads.page(request.filters, limit=request.limit + 1, starting_after=after, ending_before=before)
    # ending_before reads towards newer objects: the extra row is then the first one, not the last.
    page = rows[-request.limit :] if before is not None else rows[: request.limit]
    return page, len(rows) > request.limit


async def get_object(uow: UowFactory, kind: str, scope: Scope, stripe_id: str) -> StripeObjectRow:
    async with uow() as unit:
        row = await StripeObjectReads(unit.session, kind, scope).get(stripe_id)
    if row is None:
        # The same answer for an unknown id and another tenant's object (API.md: never reveal which).
        raise ProblemError(404, "not_found", f"No such {kind}")
    return row


async def _position(reads: StripeObjectReads, stripe_id: str | None, name: str) -> Position | None:
    if stripe_id is None:
        return None
    position = await reads.position(stripe_id)
    if position is None:
        raise ProblemError(
            422,
            "validation_error",
            f"{name}: no such object",
            errors=[FieldError(field=name, message="no such object")],
        )
    return position
