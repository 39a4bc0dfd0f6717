"""Test fixtures. eventlet must patch the standard library before anything else imports it."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_configure(config):
    config.option.suppress_eventlet_notification = True  # patched above, as nameko's plugin asks


@pytest.fixture
def schema_prefix():
    """A fresh PostgreSQL schema prefix for one test; its schemas are dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield prefix
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        schemas = conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                               {"p": prefix + "%"}).scalars().all()
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_config(request, tmp_path):
    """nameko-style config for one storage backend: SQLite files, or PostgreSQL schemas."""
    if request.param == "sqlite":
        yield {"MAWAEED_DATA_DIR": str(tmp_path), "DATABASE_URL": ""}
    else:
        yield {"DATABASE_URL": PG_URL, "DATABASE_SCHEMA_PREFIX": request.getfixturevalue("schema_prefix")}


@pytest.fixture
def open_db(backend_config):
    """open_db(service, metadata) -> shared.eventstore.Database on the parametrised backend. Its events get their
    positions after every commit that appended (Database.sequence), as a running service's relay gives them, so
    a test reads back what it appended; `sequenced_on_commit=False` leaves that to the test."""
    from shared.dependencies import open_database
    opened = []

    def factory(service, metadata, sequenced_on_commit=True):
        db = open_database(backend_config, service, metadata)
        if sequenced_on_commit:
            db.on_commit(db.sequence)
        opened.append(db)
        return db

    yield factory
    for db in opened:
        db.dispose()
