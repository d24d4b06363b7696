"""providers: every change of provider_accounts announced on NOTIFY provider_accounts

Revision ID: provider_accounts_notify
Revises: octo_simulator
Create Date: 2026-12-05 20:00:00
"""

from alembic import op

revision = "provider_accounts_notify"
down_revision = "octo_simulator"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A trigger, not a call in each writer: the admin API, Payme's ChangePassword, rotate-keys, a
    # simulator account's creation and any later writer all announce their change, in their transaction
    # (NOTIFY is sent on commit only). Each replica's copies of the accounts are dropped on it
    # (services/account_copies.py).
    op.execute(
        """
        CREATE FUNCTION provider_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('provider_accounts', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER provider_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON provider_accounts FOR EACH STATEMENT EXECUTE FUNCTION provider_accounts_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER provider_accounts_changed ON provider_accounts")
    op.execute("DROP FUNCTION provider_accounts_changed()")
