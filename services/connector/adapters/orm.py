"""The connector's tables (its own registry; none yet)."""

from shared.db import new_table_registry

connector_registry = new_table_registry()
