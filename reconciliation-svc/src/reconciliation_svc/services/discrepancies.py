"""Use cases on discrepancies: list, read, resolve, ignore (REC-5)."""

from __future__ import annotations

from collections.abc import Callable

from billing_contracts.envelope import utcnow

from reconciliation_svc.db.discrepancies import DiscrepancyFilter, DiscrepancyRepository
from reconciliation_svc.domain.discrepancies import Change, Discrepancy, can_change
from reconciliation_svc.domain.errors import InvalidState, NotFound
from reconciliation_svc.services.uow import ReconUnitOfWork

UowFactory = Callable[[], ReconUnitOfWork]


async def list_discrepancies(
    uow: UowFactory, where: DiscrepancyFilter, *, limit: int, starting_after: str | None
) -> list[Discrepancy]:
    async with uow() as unit:
        return await DiscrepancyRepository(unit.session).page(where, limit=limit, starting_after=starting_after)


async def get_discrepancy(uow: UowFactory, discrepancy_id: str) -> Discrepancy:
    async with uow() as unit:
        found = await DiscrepancyRepository(unit.session).get(discrepancy_id)
    if found is None:
        raise NotFound("discrepancy")
    return found


async def change_discrepancy(
    uow: UowFactory, discrepancy_id: str, to_state: str, *, reason: str | None, changed_by: str
) -> Discrepancy:
    """Move an open discrepancy to ``resolved`` or ``ignored``, with its audit row, in one transaction;
    409 ``invalid_state`` from any other state (two admins at once: the second gets the 409)."""
    async with uow() as unit:
        repo = DiscrepancyRepository(unit.session)
        current = await repo.get(discrepancy_id, for_update=True)
        if current is None:
            raise NotFound("discrepancy")
        if not can_change(current.state, to_state):
            raise InvalidState(f"The discrepancy is {current.state}; only an open one can become {to_state}.")
        await repo.change_state(current, Change(current.state, to_state, reason, changed_by, utcnow()))
        changed = await repo.get(discrepancy_id)
        await unit.commit()
    assert changed is not None
    return changed
