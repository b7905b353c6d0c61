"""Storage: SQLAlchemy 2.0 tables, the engine/session factory and Alembic migrations."""
