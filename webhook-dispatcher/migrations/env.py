from billing_runtime.migrations import run_env
from webhook_dispatcher.db.models import metadata

run_env(metadata)
