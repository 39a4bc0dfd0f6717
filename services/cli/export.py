"""Exporting a service's events for analysts: JSON Lines or Parquet, personal data pseudonymised by default.

A CPR, name, mobile number or email anywhere in a payload is replaced by a keyed hash (HMAC-SHA256 under the
export key), so one person's bookings and visits still join up across events and exports made with the same key,
while the export itself names nobody. Only an explicit `clear=True` writes them as they are.
"""
import json
from datetime import datetime
from pathlib import Path

from shared.events import Event
from shared.eventstore import Database
from shared.masking import pseudonymise

FORMATS = (".jsonl", ".parquet")


def event_types(service: str, text: str) -> set[str]:
    """`--types` as full type names: a bare name is the exported service's (SlotBooked: booking.SlotBooked), and a
    name the service does not publish is refused rather than silently matching nothing."""
    from shared.contracts import types_of
    known, chosen = set(types_of(service)), set()
    for name in filter(None, (part.strip() for part in text.split(","))):
        full = name if "." in name else f"{service}.{name}"
        if full not in known:
            raise ValueError(f"{service} publishes no event type {name!r}; its types: "
                             + ", ".join(sorted(t.partition(".")[2] for t in known)))
        chosen.add(full)
    return chosen


def select(db: Database, since: datetime | None, until: datetime | None, types: set | None, page: int = 5000):
    """The service's events in log order, filtered by occurrence time and type, page by page."""
    after = 0
    while True:
        with db.transaction() as uow:
            events = uow.store.read_all(after=after, limit=page)
        if not events:
            return
        for event in events:
            if (since is None or event.occurred_at >= since) and (until is None or event.occurred_at < until) \
                    and (not types or event.type in types):
                yield event
        after = events[-1].position


def _row(event: Event, key: str | None) -> dict:
    row = event.to_dict()
    if key is not None:
        row["payload"] = pseudonymise(row["payload"], key)
    return row


def export(events, path: Path, key: str | None, progress=None) -> int:
    """Write `events` to `path` (.jsonl or .parquet); `key` None writes personal fields in clear."""
    path = Path(path)
    if path.suffix == ".jsonl":
        count = 0
        with path.open("w", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(_row(event, key), ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
                if progress:
                    progress(event.position)
        return count
    if path.suffix == ".parquet":
        return _parquet(events, path, key, progress)
    raise ValueError(f"{path.name}: export writes {' or '.join(FORMATS)}")


def _parquet(events, path: Path, key: str | None, progress, batch: int = 10_000) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = pa.schema([
        ("position", pa.int64()), ("event_id", pa.string()), ("type", pa.string()), ("version", pa.int32()),
        ("stream_id", pa.string()), ("stream_version", pa.int32()), ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("correlation_id", pa.string()), ("causation_id", pa.string()), ("directorate", pa.string()),
        ("branch", pa.string()), ("service", pa.string()), ("reference", pa.string()),
        ("payload", pa.string()),  # the whole payload as JSON, for fields without a column of their own
    ])
    count, rows = 0, []
    with pq.ParquetWriter(str(path), schema) as writer:
        def flush():
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()
        for event in events:
            row = _row(event, key)
            payload = row["payload"]
            rows.append({**{k: row[k] for k in ("position", "event_id", "type", "version", "stream_id",
                                                 "stream_version", "correlation_id", "causation_id", "directorate")},
                         "occurred_at": event.occurred_at, "branch": payload.get("branch"),
                         "service": payload.get("service"), "reference": payload.get("reference"),
                         "payload": json.dumps(payload, ensure_ascii=False)})
            count += 1
            if len(rows) >= batch:
                flush()
            if progress:
                progress(event.position)
        if rows or count == 0:
            flush()
    return count
