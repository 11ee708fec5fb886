from services.syncer.adapters.orm import syncer_registry
from shared.migrations import run_env

run_env(syncer_registry.metadata)
