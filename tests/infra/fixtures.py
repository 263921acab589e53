"""Session-scoped fixtures that start real servers (filled in by the infra work)."""
