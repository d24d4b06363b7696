from billing_runtime.migrations import run_env
from reconciliation_svc.db.models import metadata

run_env(metadata)
