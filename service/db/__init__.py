"""Database schema and engine set-up (SQLAlchemy 2 Core, async)."""
