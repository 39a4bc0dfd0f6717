"""Replay: events per second rebuilding projections from logs of 100,000 and 1,000,000 booking events, and memory.

`python -m bench.replay --sizes 100000,1000000` writes, per size, a booking log straight into scratch PostgreSQL
schemas (COPY, not the command path): SlotBooked / BookingCancelled / BookingRescheduled / BookingExpired spread
over the real catalogue's slots, personal fields sealed as the store seals them (AES-GCM; one key per person,
each person's fields sealed once and reused), and the live tables those events give.
Then each projection is rebuilt and compared as `mawaeed replay` does it, in a fresh subprocess so that its peak
memory is its own: availability's slot counts from the booking log read straight from booking's database (the
CLI's `--direct`; its default reads the same log through the HTTP feed), and booking's own bookings table.

Last line of stdout: {"section": "replay", "source": ..., "target_events_per_s": 50000, "results": [{"projection",
"size", "events", "seconds" (rebuild), "events_per_s", "seconds_with_compare", "cpu_seconds_with_compare",
"identical", "ru_maxrss_mb" (the process), "peak_rss_mb" and "rss_growth_mb" (during the replay)}, ...]}.
`--keep` keeps each size's log (bench_replay_<size>_*) and reuses it on the next run.
"""
import argparse
import csv
import io
import json
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.common import PG_URL, emit
from shared import schedule, vault
from shared.clock import UTC, to_db
from shared.eventstore import Database, make_engine
from services.availability import catalogue_file

PROJECTIONS = ("availability", "booking")
FIRST_DAY = date(2027, 1, 3)
NAMES = ["فاطمة علي", "Ali Hasan", "مريم أحمد", "Yusuf Abdulla", "زينب حسن", "Sara Khalil"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def databases(prefix: str) -> dict:
    from services.availability import projection as availability
    from services.booking import projection as booking
    return {name: Database(make_engine(PG_URL, prefix + name, pool_size=2), module.metadata, prefix + name)
            for name, module in (("availability", availability), ("booking", booking))}


# -- the log ----------------------------------------------------------------------------------------------

def all_slots(days: int) -> list[tuple]:
    """(directorate, branch, service, start, end) of every slot of the seed catalogue over `days` days."""
    _, branches = catalogue_file.desired(catalogue_file.read())
    return [(doc["directorate"], branch_id, service_id, slot.start, slot.end)
            for branch_id, doc in branches.items() for service_id in doc["services"]
            for n in range(days) for slot in schedule.slots(doc, service_id, FIRST_DAY + timedelta(days=n))]


def people(count: int, rng: random.Random) -> tuple[list[dict], list[dict], list[tuple]]:
    """(people in clear, the same sealed as Vault.seal stores them, person_keys rows)."""
    clear, sealed, keys = [], [], []
    created = to_db(datetime(2026, 12, 1, tzinfo=UTC))
    for n in range(count):
        cpr = f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{n:05d}"[-9:]
        person = {"cpr": cpr, "name": rng.choice(NAMES), "mobile": f"+9733{n:07d}",
                  "email": f"p{n}@example.com" if n % 3 else None, "language": rng.choice(("ar", "en"))}
        subject, key = vault.subject_of(cpr), Fernet.generate_key()  # a person's stored key is a Fernet key
        sealer = vault.PersonKey(key.decode(), subject)
        sealed.append({k: sealer.seal(v) if k != "language" and v is not None else v for k, v in person.items()})
        clear.append(person)
        keys.append((subject, key.decode(), created))
        if n % 20_000 == 0:
            log(f"  sealed {n:,}/{count:,} people")
    return clear, sealed, keys


def generate(size: int, rng: random.Random, people: tuple, live: dict):
    """Yield the log's rows in position order; then leaves in `live` the slot counts and bookings rows that the
    live tables hold after them."""
    slots = all_slots(days=max(30, size // 4000))
    by_service = {}
    for slot in slots:
        by_service.setdefault(slot[1:3], []).append(slot)
    clear, sealed, _ = people
    counts, bookings, active, versions, cancelled = {}, {}, [], {}, []
    occurred = datetime(2026, 12, 1, 6, tzinfo=UTC)
    for position in range(1, size + 1):
        occurred += timedelta(seconds=rng.randint(1, 20))
        roll = rng.random() if active else 0
        if roll < 0.62:
            directorate, branch, service, start, end = rng.choice(slots)
            n = rng.randrange(len(clear))
            reference = f"{position:08X}"
            reference = f"{reference[:4]}-{reference[4:]}"
            type_, payload = "booking.SlotBooked", {
                "reference": reference, "branch": branch, "service": service, "start": start.isoformat(),
                "end": end.isoformat(), "person": sealed[n], "channel": rng.choice(("web", "web", "app", "counter"))}
            person = clear[n]
            bookings[reference] = [reference, 0, person["cpr"], branch, service, to_db(start), to_db(end), "active",
                                   person["name"], person["mobile"], person["email"], person["language"],
                                   payload["channel"], to_db(occurred), to_db(occurred), directorate]
            active.append(reference)
            counts[(branch, service, start)] = counts.get((branch, service, start), 0) + 1
        else:
            index = rng.randrange(len(active))
            reference = active[index]
            row = bookings[reference]
            branch, service, start, directorate = row[3], row[4], row[5].replace(tzinfo=UTC), row[15]
            common = {"reference": reference, "branch": branch, "service": service}
            if roll < 0.87:  # moved to another slot of the same branch and service
                _, _, _, new_start, new_end = rng.choice(by_service[(branch, service)])
                type_, payload = "booking.BookingRescheduled", {
                    **common, "previous_start": start.isoformat(), "start": new_start.isoformat(),
                    "end": new_end.isoformat()}
                counts[(branch, service, start)] -= 1
                counts[(branch, service, new_start)] = counts.get((branch, service, new_start), 0) + 1
                row[5], row[6], start = to_db(new_start), to_db(new_end), new_start
            else:
                active[index] = active[-1]
                active.pop()
                if roll < 0.96:
                    type_, payload = "booking.BookingCancelled", {**common, "start": start.isoformat(),
                                                                  "cancelled_by": "person"}
                    counts[(branch, service, start)] -= 1
                    row[7] = "cancelled"
                else:
                    type_, payload = "booking.BookingExpired", {**common, "start": start.isoformat()}
                    row[7] = "expired"
        stream = schedule.slot_stream(branch, service, start)
        versions[stream] = versions.get(stream, 0) + 1
        event_id = str(uuid.uuid4())
        if type_ == "booking.BookingCancelled":  # availability keeps when each place was freed (release delay)
            cancelled.append((event_id, branch, service, to_db(start), to_db(occurred)))
        yield (position, event_id, stream, versions[stream], type_, 2 if type_ == "booking.SlotBooked" else 1,
               to_db(occurred), event_id, None, directorate,
               json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    live["counts"], live["bookings"], live["cancelled"] = counts, bookings, cancelled


def copy(db: Database, table: str, columns: list[str], rows, chunk: int = 50_000) -> int:
    """COPY `rows` into `table` of `db`, `chunk` rows at a time."""
    written = 0
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            while True:
                buffer, n = io.StringIO(), 0
                out = csv.writer(buffer)
                for row in rows:
                    out.writerow(["" if v is None else v for v in row])
                    n += 1
                    if n == chunk:
                        break
                if not n:
                    break
                buffer.seek(0)
                quoted = ", ".join(f'"{c}"' for c in columns)
                cursor.copy_expert(f'COPY "{db.schema}"."{table}" ({quoted}) FROM STDIN WITH (FORMAT csv)', buffer)
                written += n
                if table == "events":
                    log(f"  wrote {written:,} events")
                if n < chunk:
                    break
        raw.commit()
    finally:
        raw.close()
    return written


def write_log(prefix: str, size: int, seed: int = 6) -> None:
    rng = random.Random(seed)
    dbs = databases(prefix)
    for db in dbs.values():
        db.create_tables()
    started = time.perf_counter()
    persons, live = people(max(1000, size // 10), rng), {}
    copy(dbs["booking"], "person_keys", ["subject", "key", "created_at"], iter(persons[2]))
    columns = ["position", "event_id", "stream_id", "stream_version", "type", "version", "occurred_at",
               "correlation_id", "causation_id", "directorate", "payload"]
    copy(dbs["booking"], "events", columns, generate(size, rng, persons, live))
    copy(dbs["booking"], "bookings", [c.name for c in dbs["booking"].tables["bookings"].columns],
         (row[:15] for row in live["bookings"].values()))
    copy(dbs["availability"], "slot_bookings", ["branch", "service", "start", "booked"],
         ((b, s, to_db(t), n) for (b, s, t), n in live["counts"].items()))
    copy(dbs["availability"], "cancelled_places", ["event_id", "branch", "service", "start", "cancelled_at"],
         iter(live["cancelled"]))
    with dbs["booking"].transaction() as uow:  # the store opens what was sealed here
        first = uow.store.read_all(limit=1)[0].payload["person"]
    assert first["cpr"] in {p["cpr"] for p in persons[0]} and first["name"] in NAMES, first
    with dbs["booking"].engine.begin() as conn:
        conn.execute(sa.text(f'ANALYZE "{prefix}booking".events'))
    for db in dbs.values():
        db.dispose()
    log(f"  generated {size:,} events, {len(live['bookings']):,} bookings, {len(live['counts']):,} "
        f"slots in {time.perf_counter() - started:.1f} s")


def exists(prefix: str, size: int) -> bool:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f'SELECT max(position) FROM "{prefix}booking".events')).scalar() == size
    except sa.exc.ProgrammingError:
        return False
    finally:
        engine.dispose()


def drop(prefix: str) -> None:
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        for name in PROJECTIONS:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{prefix}{name}" CASCADE'))
    engine.dispose()


# -- one replay, in its own process -----------------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def replay_one(projection: str, prefix: str) -> dict:
    """Rebuild and compare one projection as `mawaeed replay` does; events, seconds and memory."""
    from shared.projection import Logs
    from services.availability import replay as availability_replay
    from services.booking import replay as booking_replay
    dbs = databases(prefix)
    with dbs["booking"].transaction() as uow:
        head = uow.store.head()
    last = [0]

    def progress(position):
        if position - last[0] >= head // 10 or position == head:
            last[0] = position
            log(f"    {projection}: {position:,}/{head:,}")

    with open("/proc/self/clear_refs", "w") as refs:  # peak RSS (VmHWM) from here: the replay's own
        refs.write("5")
    baseline = _status_kb("VmRSS")  # imports and connections made
    started, cpu = time.perf_counter(), time.process_time()
    replaying = availability_replay if projection == "availability" else booking_replay
    [result] = replaying.replay(dbs[projection], Logs(dbs[projection], open_source=dbs.__getitem__), progress)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak, process_peak = _status_kb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"events": result.events, "seconds": round(result.seconds, 3),
            "events_per_s": round(result.rate) if result.seconds else None,
            "seconds_with_compare": round(total, 3), "cpu_seconds_with_compare": round(cpu, 3),
            "identical": result.identical,
            "ru_maxrss_mb": round(process_peak / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "rss_growth_mb": round((peak - baseline) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--projections", default=",".join(PROJECTIONS))
    parser.add_argument("--child", nargs=2, metavar=("PROJECTION", "PREFIX"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the logs (bench_replay_<size>_*) for the next run")
    args = parser.parse_args()
    if args.child:
        emit(replay_one(*args.child))
        return
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        prefix = f"bench_replay_{size}_" if args.keep else f"bench_replay_{uuid.uuid4().hex[:8]}_"
        try:
            if not (args.keep and exists(prefix, size)):
                log(f"replay bench: writing a log of {size:,} booking events into {prefix}*")
                write_log(prefix, size)
            for projection in args.projections.split(","):
                log(f"  replaying {projection} ({size:,} events)")
                child = subprocess.run([sys.executable, "-m", "bench.replay", "--child", projection, prefix],
                                       stdout=subprocess.PIPE, text=True, check=True)
                measured = json.loads(child.stdout.strip().splitlines()[-1])
                log(f"  {projection}: {measured}")
                results.append({"projection": projection, "size": size, **measured})
        finally:
            if not args.keep:
                drop(prefix)
    emit({"section": "replay", "source": "booking's database (keyset pages), as `mawaeed replay --direct`",
          "target_events_per_s": 50_000, "results": results})


if __name__ == "__main__":
    main()
