"""A task module that fails while being imported."""

raise RuntimeError("database not configured")
