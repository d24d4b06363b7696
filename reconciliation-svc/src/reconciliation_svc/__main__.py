"""``reconciliation-svc migrate | api | worker | all`` (``all`` = api and worker in one process),
``reconciliation-svc dead-letters list | replay`` for the dead letters of its queue, and
``reconciliation-svc rebuild`` to refill the projection from payments-svc's event log and
providers-svc's verdicts; ``reconciliation-svc
reconcile ... | runs ...`` (cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from billing_runtime.db import create_engine, make_sessionmaker
from billing_runtime.running import configure_logging, run, service_main
from billing_runtime.secret_policy import load_settings

from reconciliation_svc import cli
from reconciliation_svc.app import create_app
from reconciliation_svc.db.models import outbox
from reconciliation_svc.events.consumers import EVENTS_QUEUE
from reconciliation_svc.services.payments_http import EventLogUnavailable, PaymentsEventLog
from reconciliation_svc.services.projection import ProjectionDeps
from reconciliation_svc.services.rebuild import RebuildResult, rebuild
from reconciliation_svc.services.uow import ReconUnitOfWork
from reconciliation_svc.services.verdicts_http import ProvidersVerdicts, VerdictsUnavailable
from reconciliation_svc.settings import Settings

PROG = "reconciliation-svc"
SERVICE_ROOT = Path(__file__).resolve().parents[2]


async def rebuild_projection(settings: Settings) -> RebuildResult:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        sessions = make_sessionmaker(engine)
        deps = ProjectionDeps(
            uow=lambda: ReconUnitOfWork(sessions, outbox), first_check=settings.janitor_schedule.first
        )
        event_log = PaymentsEventLog(
            settings.payments_url, settings.payments_internal_secret.get_secret_value(), settings.request_timeout
        )
        verdicts = ProvidersVerdicts(
            settings.providers_url, settings.providers_internal_secret.get_secret_value(), settings.request_timeout
        )
        return await rebuild(deps, event_log, verdicts, page_size=settings.rebuild_page_size)
    finally:
        await engine.dispose()


def rebuild_command() -> int:
    settings = load_settings(Settings, PROG)
    configure_logging(settings.log_level)
    results: list[RebuildResult] = []

    async def main() -> None:
        results.append(await rebuild_projection(settings))

    try:
        run(main())
    except (EventLogUnavailable, VerdictsUnavailable) as exc:
        print(f"{PROG} rebuild: failed, the projection is unchanged: {exc}", file=sys.stderr)
        return 1
    done = results[0]
    print(
        f"{PROG} rebuild: {done.events} events read, {done.applied} applied, {done.skipped} skipped;"
        f" {done.verdicts} provider verdicts applied"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["rebuild"]:
        raise SystemExit(rebuild_command())
    if given[:1] and given[0] in cli.COMMANDS:
        raise SystemExit(cli.main(given, Settings))
    service_main(
        PROG,
        given,
        settings_factory=Settings,
        create_app=create_app,
        service_root=SERVICE_ROOT,
        dead_letter_queues=[EVENTS_QUEUE],
    )


if __name__ == "__main__":
    main()
