"""`mawaeed insights`: the figures of a branch, a directorate or the country, per day, ISO week or month, as a
table, CSV or JSON. Like `mawaeed audit` it reads the service's database directly (beside the insights service:
MAWAEED_DATA_DIR or DATABASE_URL), with the very query the API answers with (services/insights/queries.py)."""
import csv
import json
import sys
from datetime import date

from services.cli import CliError

# The columns of the table: the figures a person reads first (csv and json have all of them).
TABLE = (("period", "period"), ("made", "bookings_made"), ("cancelled", "bookings_cancelled"),
         ("places", "places_offered"), ("util", "slot_utilisation"), ("served", "served"),
         ("wait p90", "wait_minutes.all.p90"), ("level", "service_level.all"), ("no-show", "no_show_rate"),
         ("per c-h", "served_per_counter_hour"), ("score", "satisfaction.mean"))


def register(sub) -> None:
    p = sub.add_parser("insights", help="figures per day, week or month of a branch, a directorate or the country")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--branch")
    scope.add_argument("--directorate")
    scope.add_argument("--all", action="store_true", help="the whole country")
    p.add_argument("--from", dest="start", required=True, help="the first local date, e.g. 2026-12-01")
    p.add_argument("--to", dest="end", required=True, help="the last local date (inclusive; at most 400 days)")
    p.add_argument("--by", default="day", choices=["day", "week", "month"])
    p.add_argument("--service", help="only this service")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.set_defaults(func=run)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--{name} {text!r} is not a date like 2026-12-07") from None


def flatten(figures: dict, prefix: str = "") -> dict:
    """{"wait_minutes.all.p90": 12.5, ...}; the wait bands as satisfaction_by_wait_band.0-10.rated ..."""
    flat = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            for band in value:
                flat.update(flatten({k: v for k, v in band.items() if k != "band"},
                                    f"{prefix}{key}.{band['band']}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run(args) -> int:
    from services.cli import open_existing
    from shared.clock import clock
    from shared.errors import DomainError
    from services.insights import projection, queries
    start, end = _day(args.start, "from"), _day(args.end, "to")
    if end < start or (end - start).days + 1 > queries.MAX_DAYS:
        raise CliError(f"--from must be on or before --to, at most {queries.MAX_DAYS} days apart")
    scope = {"branch": args.branch} if args.branch else {"directorate": args.directorate} if args.directorate \
        else {"all": True}
    db = open_existing("insights", projection.metadata)
    try:
        answer = queries.report(db, scope, start, end, args.by, args.service, clock.now())
    except DomainError as exc:
        raise CliError(str(exc), 1) from None
    finally:
        db.dispose()
    rows = [{"period": p["period"], "from": p["from"], "to": p["to"], **flatten(p["figures"])}
            for p in answer["periods"]]
    rows.append({"period": "total", "from": answer["from"], "to": answer["to"], **flatten(answer["total"]["figures"])})
    if args.format == "json":
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        columns = sorted({key for row in rows for key in row} - {"period", "from", "to"})
        writer = csv.DictWriter(sys.stdout, ["period", "from", "to", *columns], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        shown = [[_cell(row.get(key)) for _, key in TABLE] for row in rows]
        widths = [max(len(title), *(len(r[i]) for r in shown)) for i, (title, _) in enumerate(TABLE)]
        print("  ".join(title.rjust(w) for (title, _), w in zip(TABLE, widths)))
        for r in shown:
            print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))
    return 0


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
