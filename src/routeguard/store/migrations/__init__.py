"""Alembic migrations of the store, run in code by `routeguard.store.db.upgrade` (no alembic.ini)."""
