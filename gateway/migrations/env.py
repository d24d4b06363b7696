from billing_runtime.migrations import run_env
from gateway.db.models import metadata

run_env(metadata)
