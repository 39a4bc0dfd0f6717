"""The nameko DependencyProvider for a service's database, and the home of its outbox relay."""
import logging

import sqlalchemy as sa
from nameko.extensions import DependencyProvider

from shared import greenpg, migrations
from shared.config import database_for
from shared.challenge import Challenge
from shared.ratelimits import Limits
from shared.relay import Relay
from shared.eventstore import Database, event_tables, make_engine

log = logging.getLogger(__name__)
_psycopg_patched = False


def service_metadata() -> sa.MetaData:
    """A service's metadata, starting with the event store's own tables."""
    metadata = sa.MetaData()
    event_tables(metadata)
    return metadata


def open_database(config: dict, service: str, metadata: sa.MetaData) -> Database:
    global _psycopg_patched
    url, schema = database_for(config, service)
    if url.startswith("postgresql") and not _psycopg_patched:
        # psycopg2 blocks the whole eventlet hub unless its waits go through eventlet.
        greenpg.patch()
        _psycopg_patched = True
    db = Database(make_engine(url, schema, config.get("DATABASE_POOL_SIZE", 10)), metadata, schema)
    migrations.migrate(db.engine, schema, service)  # to the head, replicas taking turns (shared/migrations)
    if service not in migrations.SERVICES:
        db.create_tables()  # the tables of no service beside the store's (tests' own)
    return db


class Storage(DependencyProvider):
    """Gives workers the service's Database; runs the relay that empties its outbox."""

    def __init__(self, metadata: sa.MetaData):
        self.metadata = metadata
        self.db = None
        self.relay = None

    def setup(self):
        config = self.container.config
        self.db = open_database(config, self.container.service_name, self.metadata)
        self.relay = Relay(self.db, self.container.service_name, config["AMQP_URI"],
                           config.get("TRANSPORT_OPTIONS"))
        self.db.on_commit(self.relay.ring)

    def start(self):
        self.container.spawn_managed_thread(self.relay.run)

    def stop(self):
        self.relay.stop()
        self.db.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.db

    def health_check(self) -> None:
        self.db.ping()


class Guard(DependencyProvider):
    """The abuse limits (shared/ratelimits.py) and the release-day challenge (shared/challenge.py) of a service,
    from its settings; one set of counts per process and storage, shared by the services it hosts."""
    _per_process: dict = {}

    def setup(self):
        config = self.container.config
        key = (config.get("MAWAEED_RATE_LIMITS"), config.get("MAWAEED_REDIS_URL"))
        if key not in Guard._per_process:
            Guard._per_process[key] = Limits(*key)
        self.limits = Guard._per_process[key]
        self.challenge = Challenge(config.get("MAWAEED_CHALLENGE_KEY") or "", self.limits,
                                   on=(config.get("MAWAEED_BOOKING_CHALLENGE") or "off").lower() == "on")

    def get_dependency(self, worker_ctx):
        return self
