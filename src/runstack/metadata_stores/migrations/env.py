"""Alembic environment: runs migrations on the connection runstack hands over."""

from alembic import context

from runstack.metadata_stores._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
)
with context.begin_transaction():
    context.run_migrations()
