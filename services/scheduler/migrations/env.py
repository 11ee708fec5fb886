from services.scheduler.adapters.orm import scheduler_registry
from shared.migrations import run_env

run_env(scheduler_registry.metadata)
