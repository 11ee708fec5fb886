"""The scheduler's tables (its own registry; none yet)."""

from shared.db import new_table_registry

scheduler_registry = new_table_registry()
