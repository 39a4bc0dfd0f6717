"""The one Alembic environment of the suite: shared.migrations runs it on a connection it has opened, locked and
begun (config.attributes), with the version table in the service's own schema."""
from alembic import context

attributes = context.config.attributes
context.configure(connection=attributes["connection"], version_table_schema=attributes.get("schema"),
                  target_metadata=None)
with context.begin_transaction():  # the caller's transaction: the whole run commits or rolls back as one
    context.run_migrations()
