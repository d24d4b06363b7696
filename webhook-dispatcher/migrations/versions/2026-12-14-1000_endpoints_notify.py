"""webhooks: every change of an endpoint's fan-out announced on NOTIFY webhook_endpoints

Revision ID: endpoints_notify
Revises: worker_heartbeats
Create Date: 2026-12-14 10:00:00
"""

from alembic import op

revision = "endpoints_notify"
down_revision = "worker_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A trigger, not a call in each writer: the API, the worker's disabling of a failing endpoint and
    # any later writer all announce their change, in their transaction (NOTIFY is sent on commit only).
    # Each worker's copies of the endpoints are dropped on it (services/endpoint_copies.py). Only the
    # columns an event's fan-out reads: the worker's own bookkeeping (last_success_at, failing_since)
    # changes often and must not empty the copies each time.
    op.execute(
        """
        CREATE FUNCTION webhook_endpoints_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('webhook_endpoints', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_endpoints_changed"
        " AFTER INSERT OR UPDATE OF tenant_id, enabled, deleted_at, events OR DELETE OR TRUNCATE"
        " ON webhook_endpoints FOR EACH STATEMENT EXECUTE FUNCTION webhook_endpoints_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER webhook_endpoints_changed ON webhook_endpoints")
    op.execute("DROP FUNCTION webhook_endpoints_changed()")
