"""`mawaeed report --branch B | --directorate D --month 2027-01 --out report.html|report.pdf`: the monthly
self-assessment report (services/reports) from the insights API, as one self-contained HTML file, or a PDF
printed from it by headless Chromium."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from services.cli import CliError
from shared.config import nameko_config

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by deploy/ensure-browser.sh
QUEUE_TYPES = "queue.CustomerCheckedIn,queue.TicketServed"  # all the heat map needs from the feed
PAGE = 1000  # the feed's largest page


def register(sub) -> None:
    p = sub.add_parser("report", help="the monthly self-assessment report of a centre or a directorate "
                                      "(one HTML or PDF file, Arabic and English)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--branch", help="a centre's id, e.g. npra-isa-town")
    where.add_argument("--directorate", help="a directorate's id, e.g. npra: its figures and each of its centres")
    p.add_argument("--month", required=True, help="the month, e.g. 2027-01")
    p.add_argument("--out", required=True, help="the file to write: name.html or name.pdf")
    p.add_argument("--service", help="only this service's figures (default: every service)")
    p.add_argument("--lang", choices=["ar", "en", "both"], default="both",
                   help="the report's language(s): both (default; Arabic first), ar or en")
    p.add_argument("--api", default=os.environ.get("MAWAEED_API") or nameko_config()["MAWAEED_FEED_URL"],
                   help="the suite's base URL (default: MAWAEED_API, else MAWAEED_FEED_URL)")
    p.set_defaults(func=run)


def run(args) -> int:
    from services import reports
    out = Path(args.out)
    if out.suffix not in (".html", ".pdf"):
        raise CliError(f"{out.name}: report writes name.html or name.pdf")
    if not out.parent.is_dir():
        raise CliError(f"no folder {out.parent} to write {out.name} into")
    if out.suffix == ".pdf" and not Path(CHROMIUM).is_file():
        raise CliError(f"a PDF needs Chromium at {CHROMIUM} (deploy/ensure-browser.sh installs it); "
                       "or write .html")
    try:
        first, last = reports.month_bounds(args.month)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    api = Api(args.api.rstrip("/"), _token())
    scope = {"branch": args.branch} if args.branch else {"directorate": args.directorate}
    window = {"from": first.isoformat(), "to": last.isoformat(), **({"service": args.service} if args.service else {})}
    daily = api.get("/api/v1/insights", {**scope, **window, "by": "day"})
    if args.branch:
        branch = next((b for b in api.get("/api/v1/branches", {}) if b["id"] == args.branch), None)
        if branch is None:
            raise CliError(f"no centre {args.branch!r}")
        place, centres, ids = {"kind": "branch", **_names(branch)}, None, {args.branch}
    else:
        directorate = next((d for d in api.get("/api/v1/directorates", {}) if d["id"] == args.directorate), None)
        if directorate is None:
            raise CliError(f"no directorate {args.directorate!r}")
        place = {"kind": "directorate", **_names(directorate)}
        centres = [{**_names(b), "figures": api.get("/api/v1/insights", {"branch": b["id"], **window,
                                                                         "by": "month"})["total"]["figures"]}
                   for b in api.get("/api/v1/branches", {"directorate": args.directorate})]
        ids = {c["id"] for c in centres}
    # The insights API has no hour breakdown: the heat map is drawn from the queue's events of the month.
    heat = reports.wait_heat_map(api.events("queue", QUEUE_TYPES), ids, first, last)
    html = reports.render(month=args.month, daily=daily, place=place, lang=args.lang, centres=centres, heat=heat,
                          goals=reports.targets(nameko_config().get("MAWAEED_CATALOGUE") or None, args.branch))
    if out.suffix == ".html":
        out.write_text(html, encoding="utf-8")
    else:
        print_pdf(html, out)
    print(f"wrote the {args.month} report of {args.branch or args.directorate} to {out}")
    return 0


def _names(item: dict) -> dict:
    return {"id": item["id"], "name_ar": item.get("name_ar") or item["id"],
            "name_en": item.get("name_en") or item["id"]}


def _token() -> str:
    """MAWAEED_TOKEN (an analyst's, or a manager's for their places), else one signed by the development issuer of
    this machine's suite (same MAWAEED_DATA_DIR), as `mawaeed token issue --role analyst` would."""
    if os.environ.get("MAWAEED_TOKEN"):
        return os.environ["MAWAEED_TOKEN"]
    from shared.auth import development_issuer
    try:
        return development_issuer(nameko_config()).issue("analyst", ttl_seconds=600, subject="mawaeed-report")
    except RuntimeError as exc:  # a real issuer is configured
        raise CliError(f"{exc} (set MAWAEED_TOKEN to an analyst's token)") from None


class Api:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def get(self, path: str, query: dict):
        url = f"{self.base}{path}{'?' + urlencode(query) if query else ''}"
        try:
            with urlopen(Request(url, headers={"Authorization": f"Bearer {self.token}"}), timeout=60) as response:
                return json.load(response)
        except HTTPError as exc:
            try:
                said = json.load(exc).get("error", {}).get("message") or exc.reason
            except (ValueError, AttributeError):
                said = exc.reason
            raise CliError(f"{path} answered {exc.code}: {said}") from None

    def events(self, service: str, types: str):
        after = 0
        while True:
            page = self.get("/api/v1/events", {"service": service, "types": types, "after": after, "limit": PAGE})
            yield from page["events"]
            if len(page["events"]) < PAGE:
                return
            after = page["next_after"]


def print_pdf(html: str, out: Path) -> None:
    """The HTML printed to A4 by headless Chromium (the page's own @page rules; no header or footer)."""
    if not Path(CHROMIUM).is_file():
        raise CliError(f"a PDF needs Chromium at {CHROMIUM} (deploy/ensure-browser.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="mawaeed-report-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        pdf = Path(folder) / "report.pdf"
        done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                               f"--user-data-dir={Path(folder) / 'profile'}", f"--print-to-pdf={pdf}",
                               page.as_uri()], capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not pdf.is_file():
            raise CliError(f"Chromium could not print the report: {(done.stderr or 'no PDF').strip().splitlines()[-1]}")
        shutil.move(pdf, out)
