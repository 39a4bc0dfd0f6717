"""The catalogue's projection, kept by each service that needs the schedule, in its own database: the
directorates, and each branch's document (shared/schedule.py folds it from availability's events)."""
import json

import sqlalchemy as sa

from shared import schedule
from shared.events import Event
from shared.messaging import subscribe
from shared.projection import Handlers, Logs, Replayed, apply_once, rebuild_and_compare


def keep_copy(consumer: str):
    """The service method that keeps this service's copy of the catalogue, fed by availability's events through
    the subscription `consumer`: `on_catalogue_event = catalogue.keep_copy(projection.CATALOGUE_CONSUMER)`."""
    @subscribe(consumer)
    def on_catalogue_event(self, event):
        apply_once(self.db, consumer, event, project)
    return on_catalogue_event



def catalogue_tables(metadata: sa.MetaData) -> None:
    sa.Table("directorates", metadata,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("name_en", sa.String(200), nullable=False),
             sa.Column("name_ar", sa.String(200), nullable=False))
    sa.Table("branches", metadata,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("directorate", sa.String(64), index=True),
             sa.Column("doc", sa.Text, nullable=False))


def load_catalogue(uow) -> tuple[dict, dict]:
    """(directorates by id, branch documents by id)."""
    directorates, branches = uow.tables["directorates"], uow.tables["branches"]
    found = {r.id: {"id": r.id, "name_en": r.name_en, "name_ar": r.name_ar}
             for r in uow.execute(sa.select(directorates))}
    return found, {r.id: json.loads(r.doc) for r in uow.execute(sa.select(branches))}


_BRANCH_QUERIES = {}  # (branches table, for update) -> its query by id, built once: every booking reads its branch


def load_branch(uow, branch_id: str, for_update: bool = False) -> dict | None:
    branches = uow.tables["branches"]
    query = _BRANCH_QUERIES.get((branches, for_update))
    if query is None:
        query = sa.select(branches.c.doc).where(branches.c.id == sa.bindparam("branch_id"))
        query = _BRANCH_QUERIES[(branches, for_update)] = query.with_for_update() if for_update else query
    doc = uow.execute(query, {"branch_id": branch_id}).scalar_one_or_none()
    return json.loads(doc) if doc else None


project = Handlers()  # an availability event applied to this service's copy of the catalogue


@project.on("availability.DirectorateRegistered")
def _directorate(uow, event: Event) -> None:
    p = event.payload
    _upsert(uow, uow.tables["directorates"], {"id": p["directorate"], "name_en": p["name_en"], "name_ar": p["name_ar"]})


@project.on(*schedule.STEPS)
def _branch(uow, event: Event) -> None:
    p = event.payload
    doc = schedule.apply(load_branch(uow, p["branch"], for_update=True), event)
    _upsert(uow, uow.tables["branches"], {"id": p["branch"], "directorate": doc.get("directorate"),
                                          "doc": json.dumps(doc, ensure_ascii=False, sort_keys=True)})


def _upsert(uow, table: sa.Table, row: dict) -> None:
    if uow.execute(table.update().where(table.c.id == row["id"]).values(row)).rowcount == 0:
        uow.execute(table.insert().values(row))


def replay(db, logs: Logs, progress=None) -> list[Replayed]:
    """A service's copy of the catalogue, rebuilt from availability's log and compared (`mawaeed replay catalogue
    --service S`)."""
    return [rebuild_and_compare(db, logs.of("availability"), project, ["directorates", "branches"],
                                what="catalogue copy")]
