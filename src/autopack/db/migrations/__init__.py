"""Alembic migrations: the only source of Autopack's schema."""
