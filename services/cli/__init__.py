"""`mawaeed`: run the suite (embedded or one service per process) and the gateway of the distributed mode."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko 2 is built on eventlet

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything else imports socket, threading or time

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from shared import logs  # noqa: E402
from shared.config import gateway_upstreams, nameko_config  # noqa: E402

SERVICES = {
    "availability": "services.availability.service:AvailabilityService",
    "booking": "services.booking.service:BookingService",
    "queue": "services.queue.service:QueueService",
    "notifications": "services.notifications.service:NotificationsService",
    "web": "services.web.service:WebService",   # the pages: no log of its own, only the others' API
}
LOGGED = [name for name in SERVICES if name != "web"]  # the services with an event log


def service_classes(names):
    import importlib
    classes = []
    for name in names:
        module, cls = SERVICES[name].split(":")
        classes.append(getattr(importlib.import_module(module), cls))
    return classes


def run(args) -> int:
    from nameko.runners import ServiceRunner
    names = args.services or list(SERVICES)
    config = nameko_config({**os.environ, **({"WEB_SERVER_ADDRESS": args.listen} if args.listen else {})})
    runner = ServiceRunner(config)
    for cls in service_classes(names):
        runner.add_service(cls)
    mode = "embedded" if config["AMQP_URI"].startswith("memory") else "distributed"
    logging.getLogger("mawaeed").info("starting %s (%s) on %s", ", ".join(names), mode, config["WEB_SERVER_ADDRESS"])
    stopping = eventlet.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.ready() or stopping.send())
    runner.start()
    base = f"http://{config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', 'localhost')}"
    print(f"Mawaeed is up ({mode}): {base}/ (the booking site), {base}/api/v1/directorates (the API)"
          if "web" in names else f"Mawaeed is up ({mode}): {base}/api/v1/directorates", flush=True)
    stopping.wait()
    runner.stop()
    return 0


def gateway(args) -> int:
    from services.gateway import serve
    serve(args.listen, gateway_upstreams())
    return 0


def replay(args) -> int:
    """Rebuild a service's projections from the logs into scratch tables and compare them with the live ones: each
    service's replay.py does the work (one signature, one report shape); this only opens and prints."""
    import importlib

    from shared.auth import service_credentials
    from shared.dependencies import open_database, service_metadata
    from shared.projection import Logs
    service = args.service if args.projection == "catalogue" else args.projection
    db = open_database(nameko_config(), service, importlib.import_module(f"services.{service}.projection").metadata)
    replay_module = importlib.import_module("shared.catalogue" if args.projection == "catalogue"
                                            else f"services.{service}.replay")
    direct = (lambda source: open_database(nameko_config(), source, service_metadata())) if args.direct else None
    bar, advance = _log_progress(db, f"replaying {args.projection}")
    with bar:
        logs = Logs(db, args.api, direct, service_credentials(nameko_config()).authorization)
        reports = replay_module.replay(db, logs, advance)
    for report in reports:
        _print_report(report)
    return 0 if all(report.identical for report in reports) else 1


def _print_report(report) -> None:
    differences = report.differences
    print(f"replayed {report.events} events {report.note + ' ' if report.note else ''}into a fresh {report.what} "
          f"in {report.seconds:.2f} s ({report.rate:,.0f} events/s): "
          + ("identical to the live one" if not differences else f"{len(differences)} differ"))
    for name, (live_only, rebuilt_only) in differences.items():
        print(f"  {name}: {len(live_only)} only live, {len(rebuilt_only)} only rebuilt")
        for row in (live_only + rebuilt_only)[:10]:
            print(f"    {row}")


def events_catalogue(args) -> int:
    """Write the event catalogue (docs/events/) from the contracts, or with --check compare it and write nothing."""
    from pathlib import Path
    from services.cli import event_catalogue
    out = Path(args.out) if args.out else event_catalogue.DEFAULT_OUT
    try:
        if args.check:
            differences = event_catalogue.differences(out)
            for line in differences:
                print(f"  {line}")
            print(f"{out}: {'out of date, run `mawaeed events catalogue`' if differences else 'up to date'}")
            return 1 if differences else 0
        for path in event_catalogue.write(out):
            print(f"wrote {path}")
    except event_catalogue.CatalogueError as exc:
        print(f"cannot build the event catalogue: {exc}", file=sys.stderr)
        return 2
    return 0


def _progress(description: str, total: int):
    """A rich progress bar over log positions; returns (context manager, advance-to-position callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=True)
    task = bar.add_task(description, total=max(total, 1))
    return bar, lambda position: bar.update(task, completed=position)


def _log_progress(db, description: str):
    """A progress bar over a service's log, from position 0 to its head."""
    with db.transaction() as uow:
        return _progress(description, uow.store.head())


def export_events(args) -> int:
    """Write a service's events to JSON Lines or Parquet, personal fields pseudonymised unless --clear."""
    from pathlib import Path

    from shared.clock import parse_instant
    from services.cli.export import export, select
    from shared.dependencies import open_database
    from shared.eventstore import event_tables
    import sqlalchemy as sa
    key = None if args.clear else os.environ.get("MAWAEED_EXPORT_KEY")
    if not args.clear and not key:
        print("set MAWAEED_EXPORT_KEY (the key of the pseudonyms; keep it to join exports) or pass --clear",
              file=sys.stderr)
        return 2
    metadata = sa.MetaData()
    event_tables(metadata)
    db = open_database(nameko_config(), args.service, metadata)
    events = select(db, parse_instant(args.since) if args.since else None,
                    parse_instant(args.until) if args.until else None, set(args.types.split(",")) if args.types else None)
    bar, advance = _log_progress(db, f"exporting {args.service}")
    with bar:
        count = export(events, Path(args.out), key, advance)
    print(f"wrote {count} {args.service} events to {args.out}" + (" (personal fields in clear)" if args.clear else
                                                                  " (personal fields pseudonymised)"))
    return 0


def time_travel(args) -> int:
    """The state of a branch's waiting room, or of a slot's bookings, at a past instant, from the log."""
    import json

    from shared.clock import parse_instant
    from shared.dependencies import open_database
    instant = parse_instant(args.instant)
    if args.what == "queue":
        from services.queue import projection
        from services.queue.replay import waiting_room_at
        db = open_database(nameko_config(), "queue", projection.metadata)
        with db.transaction() as uow:
            from shared import catalogue
            if catalogue.load_branch(uow, args.branch) is None:
                print(f"no branch {args.branch!r}", file=sys.stderr)
                return 1
        state = waiting_room_at(db, args.branch, instant)
    else:
        from services.booking import history, projection
        db = open_database(nameko_config(), "booking", projection.metadata)
        state = {"branch": args.branch, "service": args.service, "start": args.start, "at": args.instant,
                 "bookings": history.slot_at(db, args.branch, args.service, parse_instant(args.start), instant)}
    print(json.dumps(state, ensure_ascii=False, indent=2))
    return 0


def erase_person(args) -> int:
    """Forget a person (crypto-shredding): run beside the booking service, against its database."""
    from shared.contracts.fields import CPR_PATTERN
    from shared.masking import mask_cpr
    from shared.dependencies import open_database
    from services.booking import commands, projection
    if not CPR_PATTERN.match(args.cpr):
        print("a CPR is 9 digits, the first four YYMM of birth", file=sys.stderr)
        return 2
    result = commands.erase(open_database(nameko_config(), "booking", projection.metadata), args.cpr)
    print(f"erased {mask_cpr(args.cpr)} (subject {result['subject']}): {result['bookings']} bookings scrubbed; "
          "the other services forget their copies when PersonErased reaches them")
    return 0


def audit(args) -> int:
    """Who did what at a branch on a day, from the queue's log (beside the queue service, against its database)."""
    import json
    from datetime import date

    from shared.dependencies import open_database
    from services.queue import audit as queue_audit, projection
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print(f"{args.date!r} is not a date like 2026-12-07", file=sys.stderr)
        return 2
    entries = queue_audit.trail(open_database(nameko_config(), "queue", projection.metadata), args.branch, day)
    if args.json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
        return 0
    for entry in entries:
        actor = entry["actor"] or {}
        who = f"{actor.get('role', '-')} {actor.get('subject', '(the suite or the public)')}"
        details = " ".join(f"{k}={v}" for k, v in entry["details"].items() if k != "ticket_id")
        print(f"{entry['at'][11:19]}  {entry['event']:<18} {who:<40} {details}")
    print(f"{len(entries)} events at {args.branch} on {day}")
    return 0


def issue_token(args) -> int:
    """Print a token of the embedded development issuer (same MAWAEED_DATA_DIR as the suite) for any role."""
    from shared.auth import ROLES, development_issuer
    from shared.issuer import parse_ttl
    if args.role not in ROLES:
        print(f"unknown role {args.role!r}; choose from {', '.join(ROLES)}", file=sys.stderr)
        return 2
    try:
        issuer = development_issuer(nameko_config())
        ttl = parse_ttl(args.ttl)
    except (RuntimeError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(issuer.issue(args.role, branches=args.branch, directorates=[args.directorate] if args.directorate else [],
                       counter=args.counter, cpr=args.cpr, scopes=args.scope, ttl_seconds=ttl, subject=args.subject))
    return 0


def main(argv=None) -> int:
    logs.configure()
    parser = argparse.ArgumentParser(prog="mawaeed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run services (all of them by default) in this process")
    p_run.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of: {', '.join(SERVICES)}")
    p_run.add_argument("--listen", help="HOST:PORT to serve HTTP on (default: WEB_SERVER_ADDRESS, "
                                        "else 0.0.0.0:$MAWAEED_PORT, else 0.0.0.0:8000)")
    p_run.set_defaults(func=run)
    p_gw = sub.add_parser("gateway", help="serve the public API at one base URL in front of separate services")
    p_gw.add_argument("--listen", default=os.environ.get("GATEWAY_ADDRESS", "0.0.0.0:8000"))
    p_gw.set_defaults(func=gateway)
    p_replay = sub.add_parser("replay", help="rebuild a projection from its log into fresh tables and compare")
    p_replay.add_argument("projection", choices=["availability", "queue", "booking", "notifications", "catalogue"],
                          help="availability: slot counts from the booking log; queue: every waiting room; "
                               "booking: the bookings table; notifications: the messages; "
                               "catalogue: a service's copy of the catalogue (--service)")
    p_replay.add_argument("--service", default="booking", choices=LOGGED,
                          help="whose catalogue projection to rebuild (replay catalogue)")
    p_replay.add_argument("--api", default=os.environ.get("MAWAEED_API") or nameko_config()["MAWAEED_FEED_URL"],
                          help="base URL whose events feed serves the source logs (default: MAWAEED_FEED_URL)")
    p_replay.add_argument("--direct", action="store_true",
                          help="read the source logs straight from their services' databases (DATABASE_URL, "
                               "or the SQLite files of MAWAEED_DATA_DIR) instead of the feed")
    p_replay.set_defaults(func=replay)
    p_events = sub.add_parser("events", help="the published events")
    events_sub = p_events.add_subparsers(dest="events_command", required=True)
    p_catalogue = events_sub.add_parser("catalogue", help="write the event catalogue (catalogue.json, README.md)")
    p_catalogue.add_argument("--check", action="store_true",
                             help="write nothing; exit 1 and say what differs if the files are out of date")
    p_catalogue.add_argument("--out", help="folder of the catalogue (default: docs/events of this checkout)")
    p_catalogue.set_defaults(func=events_catalogue)
    p_export = sub.add_parser("export", help="write a service's events to .jsonl or .parquet (pseudonymised)")
    p_export.add_argument("service", choices=LOGGED)
    p_export.add_argument("out", help="the file to write: name.jsonl or name.parquet")
    p_export.add_argument("--since", help="only events at or after this ISO 8601 instant")
    p_export.add_argument("--until", help="only events before this ISO 8601 instant")
    p_export.add_argument("--types", help="only these event types, comma-separated (booking.SlotBooked,...)")
    p_export.add_argument("--clear", action="store_true",
                          help="write CPR, names and contacts as they are (default: keyed hashes, MAWAEED_EXPORT_KEY)")
    p_export.set_defaults(func=export_events)
    p_erase = sub.add_parser("erase", help="forget a person: their CPR, name and contacts read as erased everywhere")
    p_erase.add_argument("cpr")
    p_erase.set_defaults(func=erase_person)
    p_audit = sub.add_parser("audit", help="who did what at a branch on a day (the queue's log, with each actor)")
    p_audit.add_argument("--branch", required=True)
    p_audit.add_argument("--date", required=True, help="the local date, e.g. 2026-12-07")
    p_audit.add_argument("--json", action="store_true", help="the entries as JSON")
    p_audit.set_defaults(func=audit)
    p_token = sub.add_parser("token", help="tokens of the embedded development issuer (never in production)")
    token_sub = p_token.add_subparsers(dest="token_command", required=True)
    p_issue = token_sub.add_parser("issue", help="print a signed token for a role (and its places)")
    p_issue.add_argument("--role", required=True)
    p_issue.add_argument("--branch", action="append", default=[], help="a branch it acts at (repeatable)")
    p_issue.add_argument("--directorate", help="the directorate of a directorate_admin")
    p_issue.add_argument("--counter", help="a clerk's counter")
    p_issue.add_argument("--cpr", help="a citizen's CPR (as a national eID would give it)")
    p_issue.add_argument("--scope", action="append", default=[], help="e.g. events:booking, events:personal")
    p_issue.add_argument("--subject", help="who the token names (default: the role and a random suffix)")
    p_issue.add_argument("--ttl", default="8h", help="how long it lasts: 30m, 8h, 2d (default 8h)")
    p_issue.set_defaults(func=issue_token)
    p_at = sub.add_parser("at", help="time travel: a waiting room or a slot's bookings as they were at an instant")
    at_sub = p_at.add_subparsers(dest="what", required=True)
    p_at_queue = at_sub.add_parser("queue", help="a branch's waiting room")
    p_at_queue.add_argument("branch")
    p_at_queue.add_argument("instant", help="ISO 8601, e.g. 2026-12-07T10:42:00+03:00")
    p_at_slot = at_sub.add_parser("slot", help="the bookings of one slot")
    for name in ("branch", "service"):
        p_at_slot.add_argument(name)
    p_at_slot.add_argument("start", help="the slot's start, ISO 8601")
    p_at_slot.add_argument("instant", help="ISO 8601")
    for p in (p_at_queue, p_at_slot):
        p.set_defaults(func=time_travel)
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", None) or []) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
