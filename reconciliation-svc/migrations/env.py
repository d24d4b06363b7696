from billing_runtime.migrations import run_env
from reconciliation_svc.db import run_models  # noqa: F401  (its tables join the one metadata)
from reconciliation_svc.db.models import metadata

run_env(metadata)
