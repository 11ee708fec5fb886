from services.connector.adapters.orm import connector_registry
from shared.migrations import run_env

run_env(connector_registry.metadata)
