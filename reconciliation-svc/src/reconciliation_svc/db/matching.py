"""The streaming join of a staged statement with the projection: one query per record kind, a FULL
OUTER JOIN on the match key ordered by it, read through a server-side cursor. PostgreSQL sorts (to
disk when it must); this process holds one batch of rows at a time, whatever the statement's size.

Our side is the account's records whose time falls in the read window, plus any record a line names
by id whatever its time or account (so a payment settled across midnight is still found).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciliation_svc.domain.matching import OurRecord, RecordKind, TheirLine
from reconciliation_svc.domain.periods import Window

# The sandbox has no provider account: its payments carry none and its statement is named "sandbox".
SANDBOX_ACCOUNT = "sandbox"
FETCH_BATCH = 2000

_THEIRS = """theirs AS (
    SELECT match_key, seq, line, provider, provider_reference, payment_reference, payment_id, refund_id,
           amount, currency, status, occurred_at, origin
    FROM statement_lines
    WHERE statement_id = :sid AND kind = :kind AND occurred_at >= :read_from AND occurred_at < :read_to
)"""

_PAYMENT_COLUMNS = """p.id, p.tenant_id, p.status, p.amount, p.currency, p.provider, p.provider_reference,
       p.provider_account_id AS account_id, COALESCE(p.succeeded_at, p.created_at) AS at,
       NULL::text AS payment_id"""
_PAYMENT_TIME = "COALESCE(p.succeeded_at, p.created_at)"

_REFUND_COLUMNS = """r.id, r.tenant_id, r.status, r.amount, r.currency, r.provider,
       r.provider_refund_id AS provider_reference, p.provider_account_id AS account_id, r.updated_at AS at,
       r.payment_id"""


# A dispute's two money movements, each a record of ours: ``<dispute id>:withdrawn`` at the time its
# funds were withdrawn, and ``<dispute id>:reinstated`` at the time they came back (a won dispute).
# A movement that has not happened is there too, as ``NOT_WITHDRAWN`` / ``NOT_REINSTATED`` with no
# time: a line naming it then shows money we never saw move.
_DISPUTE_MOVES = """moves AS (
    SELECT d.provider_dispute_id || ':' || m.dir AS id, d.tenant_id,
           CASE WHEN m.dir = 'withdrawn'
                THEN CASE WHEN d.withdrawn_at IS NOT NULL THEN 'WITHDRAWN' ELSE 'NOT_WITHDRAWN' END
                ELSE CASE WHEN d.released_at > d.withdrawn_at THEN 'REINSTATED' ELSE 'NOT_REINSTATED' END
           END AS status,
           d.amount, d.currency, d.provider, d.provider_dispute_id AS provider_reference,
           p.provider_account_id AS account_id,
           CASE WHEN m.dir = 'withdrawn' THEN d.withdrawn_at
                WHEN d.released_at > d.withdrawn_at THEN d.released_at END AS at,
           d.payment_id
    FROM recon_disputes d LEFT JOIN recon_payments p ON p.id = d.payment_id
    CROSS JOIN (VALUES ('withdrawn'), ('reinstated')) AS m(dir)
)"""
_DISPUTE_COLUMNS = "id, tenant_id, status, amount, currency, provider, provider_reference, account_id, at, payment_id"


def _account_filter(account_id: str) -> str:
    if account_id == SANDBOX_ACCOUNT:
        return "p.provider = 'sandbox' AND p.provider_account_id IS NULL"
    return "p.provider_account_id = :account"


def _query(kind: RecordKind, account_id: str) -> str:
    # Built only from this module's constant fragments; every value travels as a bound parameter.
    account = _account_filter(account_id)
    if kind == "dispute":
        # The sandbox has no disputes (its account filter names payments by ``p``, absent here).
        moves_account = "FALSE" if account_id == SANDBOX_ACCOUNT else "account_id = :account"
        ours = f"""{_DISPUTE_MOVES}, ours AS (
    SELECT {_DISPUTE_COLUMNS} FROM moves WHERE {moves_account} AND at >= :read_from AND at < :read_to
    UNION
    SELECT {_DISPUTE_COLUMNS} FROM moves WHERE id IN (SELECT match_key FROM theirs)
)"""  # noqa: S608
    elif kind == "payment":
        ours = f"""ours AS (
    SELECT {_PAYMENT_COLUMNS} FROM recon_payments p
    WHERE {account} AND {_PAYMENT_TIME} >= :read_from AND {_PAYMENT_TIME} < :read_to
    UNION
    SELECT {_PAYMENT_COLUMNS} FROM recon_payments p WHERE p.id IN (SELECT match_key FROM theirs)
)"""  # noqa: S608
    else:
        ours = f"""ours AS (
    SELECT {_REFUND_COLUMNS} FROM recon_refunds r JOIN recon_payments p ON p.id = r.payment_id
    WHERE {account} AND r.updated_at >= :read_from AND r.updated_at < :read_to
    UNION
    SELECT {_REFUND_COLUMNS} FROM recon_refunds r LEFT JOIN recon_payments p ON p.id = r.payment_id
    WHERE r.id IN (SELECT match_key FROM theirs)
)"""  # noqa: S608
    return f"""WITH {_THEIRS}, {ours}
SELECT o.id AS o_id, o.tenant_id AS o_tenant_id, o.status AS o_status, o.amount AS o_amount,
       o.currency AS o_currency, o.provider AS o_provider, o.provider_reference AS o_provider_reference,
       o.account_id AS o_account_id, o.at AS o_at, o.payment_id AS o_payment_id,
       t.match_key AS t_key, t.seq AS t_seq, t.line AS t_line, t.provider AS t_provider,
       t.provider_reference AS t_provider_reference, t.payment_reference AS t_payment_reference,
       t.payment_id AS t_payment_id, t.refund_id AS t_refund_id,
       t.amount AS t_amount, t.currency AS t_currency, t.status AS t_status, t.occurred_at AS t_occurred_at,
       t.origin AS t_origin
FROM ours o FULL OUTER JOIN theirs t ON t.match_key = o.id
ORDER BY COALESCE(o.id, t.match_key), t.seq"""  # noqa: S608


@dataclass(frozen=True)
class JoinedRow:
    key: str
    ours: OurRecord | None
    theirs: TheirLine | None


async def joined_rows(
    engine: AsyncEngine, kind: RecordKind, *, statement_id: str, account_id: str, window: Window
) -> AsyncIterator[JoinedRow]:
    """Every (our record, their line) pair of the account and window, ordered by key; a record with no
    counterpart comes with None on the other side."""
    params = {
        "sid": statement_id,
        "kind": kind,
        "account": account_id,
        "read_from": window.read_from,
        "read_to": window.read_to,
    }
    async with engine.connect() as conn:
        # The planner overestimates the join (it cannot know that a line names one payment) and would
        # JIT-compile it: most of a 10,000-line run's time went to compiling (EXPLAIN ANALYZE).
        await conn.execute(text("SET LOCAL jit = off"))
        result = await conn.stream(text(_query(kind, account_id)).execution_options(yield_per=FETCH_BATCH), params)
        async for row in result:
            m = row._mapping
            ours = None
            if m["o_id"] is not None:
                ours = OurRecord(
                    id=m["o_id"],
                    status=m["o_status"],
                    amount=m["o_amount"],
                    currency=m["o_currency"],
                    at=m["o_at"],
                    tenant_id=m["o_tenant_id"],
                    provider=m["o_provider"],
                    provider_reference=m["o_provider_reference"],
                    account_id=m["o_account_id"],
                    payment_id=m["o_payment_id"],
                )
            theirs = None
            if m["t_seq"] is not None:
                theirs = TheirLine(
                    seq=m["t_seq"],
                    provider=m["t_provider"],
                    provider_reference=m["t_provider_reference"],
                    amount=m["t_amount"],
                    currency=m["t_currency"],
                    status=m["t_status"],
                    occurred_at=m["t_occurred_at"],
                    origin=m["t_origin"],
                    line=m["t_line"],
                    payment_id=m["t_payment_id"],
                    refund_id=m["t_refund_id"],
                    payment_reference=m["t_payment_reference"],
                )
            yield JoinedRow(m["o_id"] if ours is not None else m["t_key"], ours, theirs)
