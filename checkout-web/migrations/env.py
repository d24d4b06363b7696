from billing_runtime.migrations import run_env
from checkout_web.db.models import metadata

run_env(metadata)
