"""Alembic migrations; run them with `gis db migrate` (see ``gis.migrations.api``)."""
