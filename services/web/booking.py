"""The booking site: choose a centre, service, day and time, give the details, confirm; manage a booking.

Without JavaScript every step is a small form: the choosing steps are GET forms on `/` (the choices so far in the
query), the person's details are POSTed (a CPR never goes in a URL), and so is everything about an existing
booking (`/manage`: the reference and CPR travel in the form's body, and the API reads them from its body or the
X-CPR header). The pages speak to the suite only through its public API, with the person's own token and address:
GET /api/v1/directorates and /branches (kept for a minute: the catalogue changes rarely), /availability (a day's
times; a month's calendar asks for each day a person could book, in parallel), POST /api/v1/bookings, and the
booking's own routes for reading, moving and cancelling it.

A citizen signed in with the national eID (services/web/signin.py: the `session` cookie, or a citizen's bearer
token on the request itself) books and manages without typing a CPR, and sees their bookings at every directorate
on `/my` (GET /api/v1/me/bookings): the pages send the citizen's token as Bearer for the citizen's own calls only
(Site.citizen_api), never a CPR. On a trial (no external issuer) `POST /signin/citizen` is the development
sign-in of a citizen by CPR and name; it is never offered when MAWAEED_OIDC_ISSUER is set.
"""
import calendar
import re
import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import eventlet
import segno
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from shared.clock import LOCAL, clock
from shared.contracts.fields import CPR_PATTERN
from shared.web import api
from services.notifications.messages import AR_MONTHS, WHAT_TO_BRING, calendar_file, local_date
from services.web import signin
from services.web.client import ApiError
from services.web.i18n import language_of
from services.web.pages import render
from services.web.site import Site

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # date.weekday() order
CATALOGUE_SECONDS = 60            # how long the pages keep the directorates and branches
PARALLEL_DAYS = 6                 # a month's calendar asks for this many days at once
MOBILE = re.compile(r"\+?[0-9]{8,15}\Z")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
REFERENCE_CHARS = re.compile(r"[^0-9A-Z]")
SLOT_PROBLEMS = {"SLOT_FULL", "SLOT_UNAVAILABLE", "SLOT_IN_PAST", "TOO_SOON", "OUTSIDE_BOOKING_WINDOW"}
DETAILS = ("name", "cpr", "mobile", "email", "language")
_catalogue_cache: dict = {}


# -- pure helpers (tested directly) -----------------------------------------------------------------------------

def normalise_reference(text: str) -> str:
    """What people type ("k7mx 9qrd") as the suite writes it ("K7MX-9QRD"); anything else upper-cased."""
    code = REFERENCE_CHARS.sub("", (text or "").upper())
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else (text or "").strip().upper()


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_month(text: str | None) -> date | None:
    try:
        return datetime.strptime(text, "%Y-%m").date() if text else None
    except ValueError:
        return None


def parse_start(text: str | None) -> datetime | None:
    try:
        start = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return start if start and start.tzinfo else None


def month_name(day: date, language: str) -> str:
    return f"{AR_MONTHS[day.month - 1]} {day.year}" if language == "ar" else f"{day:%B %Y}"


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_grid(month: date, today: date, branch: dict) -> list[list[dict | None]]:
    """The weeks (Sunday first) of `month` at a branch, each day with what is known before asking for its times:
    `past`, `later` (beyond the booking window), `closed` (a weekly closing day), or `ask` (the API will say)."""
    window = (branch.get("booking_window") or {}).get("max_days_ahead") or 30
    open_days = {d["day"] for d in branch.get("opening_hours") or [] if d.get("periods")}
    if not branch.get("opening_hours"):
        open_days = set(WEEKDAYS)
    first = month.replace(day=1)
    days = calendar.monthrange(first.year, first.month)[1]
    cells: list[dict | None] = [None] * ((first.weekday() + 1) % 7)
    for n in range(1, days + 1):
        day = first.replace(day=n)
        if day < today:
            state = "past"
        elif day > today + timedelta(days=window):
            state = "later"
        elif WEEKDAYS[day.weekday()] not in open_days:
            state = "closed"
        else:
            state = "ask"
        cells.append({"date": day, "iso": day.isoformat(), "state": state, "places": 0, "reason": None})
    cells += [None] * (-len(cells) % 7)
    return [cells[i:i + 7] for i in range(0, len(cells), 7)]


def day_state(answer: dict) -> tuple[str, int, dict | None]:
    """(state, free places, closed reason) of a day from GET /api/v1/availability's answer."""
    if answer.get("closed"):
        return "closed", 0, answer["closed"]
    places = sum(s["remaining"] for s in answer.get("slots", []) if s.get("bookable"))
    return ("free" if places else "full"), places, None


def free_times(answer: dict) -> list[dict]:
    """The times of a day that can be booked now, with the places left, for a person to choose from."""
    return [{"start": s["start"], "time": datetime.fromisoformat(s["start"]).astimezone(LOCAL).strftime("%H:%M"),
             "end": datetime.fromisoformat(s["end"]).astimezone(LOCAL).strftime("%H:%M"), "remaining": s["remaining"]}
            for s in answer.get("slots", []) if s.get("bookable") and s.get("remaining", 0) > 0]


def check_details(form: dict, citizen: bool) -> dict:
    """The details form's problems, by field (the API decides in the end; this spares a round trip)."""
    problems = {}
    if not form.get("name") or len(form["name"]) > 200:
        problems["name"] = "name"
    if not citizen and not CPR_PATTERN.match(form.get("cpr") or ""):
        problems["cpr"] = "cpr"
    if form.get("mobile") and not MOBILE.match(form["mobile"]):
        problems["mobile"] = "mobile"
    if form.get("email") and (not EMAIL.match(form["email"]) or len(form["email"]) > 254):
        problems["email"] = "email"
    if form.get("language") not in ("ar", "en"):
        problems["language"] = "language"
    return problems


def qr_svg(reference: str, label: str) -> str:
    """The reference as a QR code (what the kiosk reads: the reference itself), inline SVG without styles."""
    svg = segno.make(reference, error="m").svg_inline(scale=5, dark="#000", light="#fff", omitsize=True,
                                                      title=label, svgclass="qr")
    return svg.replace("<svg ", '<svg role="img" aria-label="' + label.replace('"', "") + '" ', 1)


def when(start: str | datetime, language: str) -> dict:
    instant = parse_start(start) if isinstance(start, str) else start
    if instant is None:
        return {"date": "", "time": "", "iso": ""}
    local = instant.astimezone(LOCAL)
    return {"date": local_date(local, language), "time": local.strftime("%H:%M"), "iso": local.isoformat(),
            "day": local.date().isoformat()}


def named(thing: dict | None, language: str, prefix: str = "name") -> str:
    if not thing:
        return ""
    return thing.get(f"{prefix}_{language}") or thing.get(f"{prefix}_en") or thing.get("id", "")


class BookingPages(Site):

    # -- the API, as the pages use it ---------------------------------------------------------------------------

    def _booking_catalogue(self, request, path: str):
        """GET /api/v1/directorates or /branches, kept for a minute: the same for everybody, and rarely changed."""
        api_client = self.api(request)
        key = (api_client.base_url, path)
        found = _catalogue_cache.get(key)
        if found and found[0] > time.monotonic():
            return found[1]
        answer = api_client.get(path)
        _catalogue_cache[key] = (time.monotonic() + CATALOGUE_SECONDS, answer)
        return answer

    def _booking_branch(self, request, branch_id: str) -> dict | None:
        return next((b for b in self._booking_catalogue(request, "/api/v1/branches") if b["id"] == branch_id), None)

    def _booking_availability(self, api_client, branch: str, service: str, day: date) -> dict:
        return api_client.get("/api/v1/availability?" + urlencode({"branch": branch, "service": service,
                                                                    "date": day.isoformat()}))

    def _booking_month(self, request, branch: dict, service: str, month: date) -> list[list[dict | None]]:
        """The month's calendar: what each day a person could book has (asked in parallel), why the others not."""
        weeks = month_grid(month, self._booking_today(), branch)
        asked = [cell for week in weeks for cell in week if cell and cell["state"] == "ask"]
        api_client, lang = self.api(request), language_of(request)
        for cell in (c for week in weeks for c in week if c):
            cell["name"] = local_date(datetime.combine(cell["date"], datetime.min.time(), LOCAL), lang)

        def ask(cell):
            try:
                return cell, day_state(self._booking_availability(api_client, branch["id"], service, cell["date"]))
            except ApiError:
                return cell, ("unknown", 0, None)  # the day's own page will say what is wrong

        for cell, (state, places, reason) in eventlet.GreenPool(PARALLEL_DAYS).imap(ask, asked):
            cell.update(state=state, places=places, reason=reason)
        return weeks

    def _booking_today(self) -> date:
        return clock.now().astimezone(LOCAL).date()

    def _booking_citizen(self, request) -> bool:
        """A citizen is signed in (the session) or shows their own token: no CPR to type."""
        return signin.is_citizen(self.citizen(request))

    def _booking_person(self, request) -> dict | None:
        """Who is signed in, as the pages show it to them: their name (if the eID gives one) and a masked CPR."""
        principal = self.citizen(request)
        if not signin.is_citizen(principal):
            return None
        return {"name": principal.name or "", "cpr": signin.masked_cpr(principal.cpr)}

    def _booking_my_bookings(self, request, lang: str) -> list[dict]:
        """The signed-in citizen's bookings at every directorate (GET /api/v1/me/bookings, with their token)."""
        bookings = self.citizen_api(request).get("/api/v1/me/bookings")["bookings"]
        for booking in bookings:
            booking["when"] = when(booking["start"], lang)
        return bookings

    # -- booking: the choosing steps ------------------------------------------------------------------------------

    @api("GET", "/")
    def booking_home(self, request):
        """Directorate → centre → service → day → time → details: each step a small GET form on this page."""
        args = request.args
        if args.get("reference"):  # the link of emails sent before the manage page existed
            return redirect("/manage?" + urlencode({"reference": args["reference"]}))
        lang = language_of(request)
        page = {"step": "directorate", "choice": {}, "error": None, "field_error": None,
                "citizen": self._booking_citizen(request), "person": self._booking_person(request),
                "signin_link": signin.signin_url(request)}
        try:
            return self._booking_choose(request, args, lang, page)
        except ApiError as refused:
            page["error"] = refused.message(lang)
            return render(request, "booking.html", status=refused.status if refused.status < 500 else 503, **page)

    def _booking_choose(self, request, args, lang, page):
        choice = page["choice"]
        directorates = self._booking_catalogue(request, "/api/v1/directorates")
        page["directorates"] = directorates
        directorate = next((d for d in directorates if d["id"] == args.get("directorate")), None)
        if directorate is None:
            if args.get("directorate"):
                page["field_error"] = "directorate"
            if page["citizen"]:
                page["my_bookings"] = self._booking_my_bookings(request, lang)
            return render(request, "booking.html", status=422 if page["field_error"] else 200, **page)
        choice["directorate"] = directorate
        page["branches"] = [b for b in self._booking_catalogue(request, "/api/v1/branches")
                            if b["directorate"] == directorate["id"]]
        branch = next((b for b in page["branches"] if b["id"] == args.get("branch")), None)
        if branch is None:
            page.update(step="centre", field_error="branch" if args.get("branch") else None)
            return render(request, "booking.html", status=422 if page["field_error"] else 200, **page)
        choice["branch"] = branch
        service = next((s for s in branch["services"] if s["id"] == args.get("service")), None)
        if service is None:
            page.update(step="service", field_error="service" if args.get("service") else None)
            return render(request, "booking.html", status=422 if page["field_error"] else 200, **page)
        choice["service"] = service
        day = parse_day(args.get("date"))
        if day is None:
            return self._booking_day_step(request, page, branch, service, args, "date" if args.get("date") else None)
        choice["date"] = day
        page["day_name"] = local_date(datetime.combine(day, datetime.min.time(), LOCAL), lang)
        start = parse_start(args.get("start"))
        if start is None:
            answer = self._booking_availability(self.api(request), branch["id"], service["id"], day)
            page.update(step="time", times=free_times(answer), closed=answer.get("closed"),
                        field_error="start" if args.get("start") else None)
            return render(request, "booking.html", status=422 if page["field_error"] else 200, **page)
        # the details: a POST form from here on (a CPR never goes in a URL)
        return self._booking_details(request, page, branch, service, start, {"language": lang}, {})

    def _booking_day_step(self, request, page, branch, service, args, field_error):
        today = self._booking_today()
        month = parse_month(args.get("month")) or today.replace(day=1)
        window = (branch.get("booking_window") or {}).get("max_days_ahead") or 30
        first, last = today.replace(day=1), today + timedelta(days=window)
        month = min(max(month, first), last.replace(day=1))
        weeks = self._booking_month(request, branch, service["id"], month)
        page.update(step="day", field_error=field_error, month=month, weeks=weeks,
                    month_label=month_name(month, language_of(request)),
                    previous_month=add_months(month, -1) if month > first else None,
                    next_month=add_months(month, 1) if add_months(month, 1) <= last else None,
                    min_date=today.isoformat(), max_date=last.isoformat())
        page["closed_days"] = [c for week in page["weeks"] for c in week if c and c["state"] == "closed"]
        return render(request, "booking.html", status=422 if field_error else 200, **page)

    def _booking_details(self, request, page, branch, service, start, values, problems, status=200, error=None,
                 slot_problem=False):
        lang = language_of(request)
        page.update(step="details", start=start.isoformat(), when=when(start, lang), values=values,
                    problems=problems, error=error or page.get("error"), slot_problem=slot_problem)
        page["choice"].update(branch=branch, service=service)
        page["person"] = self._booking_person(request)
        if page["citizen"] and not values.get("name"):
            values["name"] = (page["person"] or {}).get("name") or ""
        # signing in comes back to this very step (the choice is in the query; never a CPR)
        here = "/?" + urlencode({"lang": lang, "directorate": branch["directorate"], "branch": branch["id"],
                                 "service": service["id"], "date": start.astimezone(LOCAL).date().isoformat(),
                                 "start": start.isoformat()})
        page["signin_link"] = "/signin?next=" + quote(here, safe="")
        return render(request, "booking_details.html", status=status, **page)

    # -- booking: details, confirm, book ---------------------------------------------------------------------------

    @api("GET", "/book")
    def booking_book_get(self, request):
        """The details and confirm steps are POSTed; a GET (say, switching language) starts over."""
        return redirect("/" + (f"?lang={request.args['lang']}" if request.args.get("lang") in ("ar", "en") else ""))

    @api("POST", "/book")
    def booking_book(self, request):
        lang = language_of(request)
        form = {k: (request.form.get(k) or "").strip() for k in
                ("directorate", "branch", "service", "start", "step", *DETAILS)}
        citizen = self._booking_citizen(request)
        page = {"choice": {}, "error": None, "citizen": citizen}
        values = {k: form[k] for k in DETAILS}
        if citizen:
            values["cpr"] = ""
        try:
            branch = self._booking_branch(request, form["branch"])
        except ApiError as refused:
            return render(request, "booking.html", status=503, step="directorate", directorates=[], choice={},
                          error=refused.message(lang), citizen=citizen)
        service = next((s for s in (branch or {}).get("services", []) if s["id"] == form["service"]), None)
        start = parse_start(form["start"])
        if branch is None or service is None or start is None:
            return redirect("/")
        page["choice"]["directorate"] = {"id": branch["directorate"]}
        page["choice"]["date"] = start.astimezone(LOCAL).date()
        problems = check_details(values, citizen)
        if problems or form["step"] not in ("confirm", "details"):
            return self._booking_details(request, page, branch, service, start, values, problems,
                                 status=422 if problems else 200)
        if form["step"] == "details":
            page.update(step="confirm", start=start.isoformat(), when=when(start, lang), values=values,
                        person=self._booking_person(request))
            page["choice"].update(branch=branch, service=service)
            return render(request, "booking_confirm.html", **page)
        body = {"branch": branch["id"], "service": service["id"], "start": start.isoformat(), "name": values["name"],
                "language": values["language"], "mobile": values["mobile"] or None, "email": values["email"] or None}
        if not citizen:
            body["cpr"] = values["cpr"]
        try:
            booked = self.citizen_api(request).post("/api/v1/bookings", body)
        except ApiError as refused:
            fields = {k: k for k in refused.fields if k in DETAILS}
            return self._booking_details(request, page, branch, service, start, values, fields,
                                 status=refused.status if refused.status < 500 else 503,
                                 error=refused.message(lang), slot_problem=refused.code in SLOT_PROBLEMS)
        return self._booking_done(request, booked, branch, service, created=True)

    def _booking_done(self, request, booking: dict, branch: dict | None, service: dict | None, created: bool = False,
              template: str = "booking_done.html", **extra):
        lang = language_of(request)
        reference = booking["reference"]
        ics = f"/calendar/{quote(reference)}.ics?" + urlencode(
            {"branch": booking["branch"], "service": booking["service"], "start": booking["start"], "lang": lang})
        return render(request, template, status=201 if created else 200, booking=booking, branch=branch,
                      service=service, when=when(booking["start"], lang),
                      end=when(booking.get("end") or booking["start"], lang),
                      centre=booking.get(f"branch_name_{lang}") or named(branch, lang),
                      service_name=booking.get(f"service_name_{lang}") or named(service, lang),
                      what_to_bring=WHAT_TO_BRING[lang], ics_url=ics,
                      qr=qr_svg(reference, ("رمز الحجز " if lang == "ar" else "QR code of booking ") + reference),
                      manage_url="/manage?" + urlencode({"reference": reference}), **extra)

    @api("GET", "/calendar/<reference>.ics")
    def booking_calendar_file(self, request, reference):
        """The appointment as a calendar file (the confirmation email's, services/notifications/messages.py)."""
        args = request.args
        lang = args.get("lang") if args.get("lang") in ("ar", "en") else language_of(request)
        start = parse_start(args.get("start"))
        reference = normalise_reference(reference)
        try:
            found = self._booking_branch(request, args.get("branch", ""))
        except ApiError as refused:
            return Response(refused.message(lang), status=503, content_type="text/plain; charset=utf-8")
        services = {s["id"]: s for s in (found or {}).get("services", [])}
        if found is None or args.get("service") not in services or start is None \
                or not re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", reference):
            return Response("Not found." if lang == "en" else "غير موجود.", status=404,
                            content_type="text/plain; charset=utf-8")
        ics = calendar_file(reference, {**found, "services": services}, args["service"],
                            start.astimezone(timezone.utc), lang, stamp=clock.now())
        return Response(ics, content_type="text/calendar; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="mawaeed-{reference}.ics"'})

    # -- a citizen's own: signing in (development issuer) and their bookings ----------------------------------------

    @api("GET", "/my")
    def booking_my(self, request):
        """My bookings: the signed-in citizen's bookings at every directorate, each a link to manage it. Nobody
        signed in as a citizen: to /signin, and back here."""
        lang = language_of(request)
        if not self._booking_citizen(request):
            return redirect(signin.signin_url(request), 303)
        try:
            bookings = self._booking_my_bookings(request, lang)
        except ApiError as refused:
            if refused.status == 401:   # the token ran out or was refused: sign in again
                return signin.drop_session(redirect(signin.signin_url(request), 303), self.config)
            return render(request, "my.html", status=refused.status if refused.status < 500 else 503,
                          bookings=[], upcoming=[], earlier=[], person=self._booking_person(request),
                          error=refused.message(lang))
        upcoming = [b for b in bookings if b.get("status") == "active"]
        earlier = [b for b in bookings if b.get("status") != "active"]
        return render(request, "my.html", bookings=bookings, upcoming=upcoming, earlier=earlier,
                      person=self._booking_person(request), error=None)

    @api("POST", "/signin/citizen")
    def booking_signin_citizen(self, request):
        """The development sign-in of a citizen (CPR and name, in the form's body): only when the suite is its own
        issuer; with an external one, citizens sign in at the issuer (GET /signin)."""
        if not signin.development_available(self.config):
            return render(request, "signin.html", status=404, problem="development_off", development=False)
        form = {k: (request.form.get(k) or "").strip() for k in ("cpr", "name", "next")}
        next_page = signin.safe_next(form["next"], "")
        errors = {}
        if not signin.valid_cpr(form["cpr"]):
            errors["cpr"] = "cpr"
        if len(form["name"]) > 200:
            errors["name"] = "name"
        if errors:
            lang = language_of(request)
            try:
                branches = self._booking_catalogue(request, "/api/v1/branches")
                directorates = self._booking_catalogue(request, "/api/v1/directorates")
                groups = [(d, [b for b in branches if b.get("directorate") == d["id"]]) for d in directorates]
                api_error = None
            except ApiError as refused:
                groups, api_error = [], refused.message(lang)
            return render(request, "signin.html", status=422, development=True, groups=[g for g in groups if g[1]],
                          next_page=next_page, form={}, errors={}, roles=signin.DEV_ROLES, api_error=api_error,
                          citizen_form={"name": form["name"]}, citizen_errors=errors)
        token = signin.development_citizen_token(self.config, form["cpr"], form["name"] or None)
        return signin.keep_session(redirect(next_page or signin.CITIZEN_LANDING, 303), token, self.config)

    # -- managing a booking ------------------------------------------------------------------------------------------

    @api("GET", "/manage")
    def booking_manage_find(self, request):
        """Reference + CPR (a POST form: never a CPR in a URL); ?reference= fills the reference in (the emails'
        link). A signed-in citizen needs no CPR: their booking opens at once."""
        lang = language_of(request)
        reference = normalise_reference(request.args.get("reference", ""))
        citizen = self._booking_citizen(request)
        if citizen and reference:
            try:
                booking = self.citizen_api(request).get(f"/api/v1/bookings/{quote(reference)}")
            except ApiError as refused:
                return render(request, "manage.html", status=refused.status, values={"reference": reference},
                              problems={}, error=refused.message(lang), citizen=citizen)
            return self._booking_manage_view(request, booking, "")
        return render(request, "manage.html", values={"reference": reference}, problems={}, error=None,
                      citizen=citizen, person=self._booking_person(request), signin_link=signin.signin_url(request))

    @api("POST", "/manage")
    def booking_manage(self, request):
        lang = language_of(request)
        form = {k: (request.form.get(k) or "").strip() for k in
                ("reference", "cpr", "action", "branch", "service", "date", "month", "start")}
        reference = form["reference"] = normalise_reference(form["reference"])
        citizen = self._booking_citizen(request)
        cpr = "" if citizen else form["cpr"]
        problems = {}
        if not re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", reference):
            problems["reference"] = "reference"
        if not citizen and not CPR_PATTERN.match(cpr):
            problems["cpr"] = "cpr"
        if problems:
            return render(request, "manage.html", status=422, values=form, problems=problems, error=None,
                          citizen=citizen)
        api_client = self.citizen_api(request)
        path = f"/api/v1/bookings/{quote(reference)}"
        action = form["action"] or "find"
        body = {} if citizen else {"cpr": cpr}
        try:
            if action == "cancel-do":
                booking = api_client.post(f"{path}/cancel", body)
                return self._booking_manage_view(request, booking, cpr, notice="cancelled")
            if action == "move-do":
                try:
                    booking = api_client.post(f"{path}/reschedule", {**body, "start": form["start"]})
                except ApiError as refused:
                    if refused.code not in SLOT_PROBLEMS and refused.status != 422:
                        raise
                    return self._booking_move(request, form, cpr, error=refused.message(lang))
                return self._booking_manage_view(request, booking, cpr, notice="moved")
            if action in ("move", "move-time", "move-confirm"):
                return self._booking_move(request, form, cpr)
            booking = api_client.get(path, headers={} if citizen else {"X-CPR": cpr})
        except ApiError as refused:
            if refused.status in (404, 422) and action == "find":
                problems = {k: k for k in refused.fields if k in ("cpr", "reference")}
                return render(request, "manage.html", status=refused.status, values=form, problems=problems,
                              error=refused.message(lang), citizen=citizen)
            return self._booking_manage_error(request, form, cpr, refused)
        return self._booking_manage_view(request, booking, cpr, ask_cancel=action == "cancel")

    def _booking_manage_error(self, request, form, cpr, refused: ApiError):
        """A refusal after the booking was found (already started, cancelled, too many tries): the booking again,
        with the reason at the top."""
        lang = language_of(request)
        try:
            headers = {} if self._booking_citizen(request) else {"X-CPR": cpr}
            booking = self.citizen_api(request).get(f"/api/v1/bookings/{quote(form['reference'])}", headers=headers)
        except ApiError:
            return render(request, "manage.html", status=refused.status if refused.status < 500 else 503,
                          values=form, problems={}, error=refused.message(lang), citizen=self._booking_citizen(request))
        return self._booking_manage_view(request, booking, cpr, error=refused.message(lang),
                                 status=refused.status if refused.status < 500 else 503)

    def _booking_manage_view(self, request, booking: dict, cpr: str, notice: str | None = None,
                             ask_cancel: bool = False, error: str | None = None, status: int = 200):
        branch = None
        try:
            branch = self._booking_branch(request, booking["branch"])
        except ApiError:
            pass
        service = next((s for s in (branch or {}).get("services", []) if s["id"] == booking["service"]), None)
        response = self._booking_done(request, booking, branch, service, template="manage_booking.html", cpr=cpr,
                              notice=notice, ask_cancel=ask_cancel, error=error, citizen=self._booking_citizen(request))
        response.status_code = status
        return response

    def _booking_move(self, request, form: dict, cpr: str, error: str | None = None):
        """Moving a booking: the same calendar and time steps as booking, as POST forms (they carry the CPR)."""
        lang = language_of(request)
        branch = self._booking_branch(request, form["branch"])
        service = next((s for s in (branch or {}).get("services", []) if s["id"] == form["service"]), None)
        if branch is None or service is None:
            return self._booking_manage_error(request, form, cpr, ApiError(404, {
                "code": "UNKNOWN_SERVICE", "message": "This service is not offered here any more.",
                "message_ar": "الخدمة المطلوبة غير متوفرة في هذا الفرع."}))
        page = {"reference": form["reference"], "cpr": cpr, "branch": branch, "service": service, "error": error,
                "citizen": self._booking_citizen(request), "field_error": None,
                "choice": {"branch": branch, "service": service}}
        day, start = parse_day(form["date"]), parse_start(form["start"])
        if form["action"] == "move-confirm" and start is not None:
            page.update(step="confirm", start=start.isoformat(), when=when(start, lang))
            return render(request, "manage_move.html", **page)
        if form["action"] in ("move-time", "move-confirm", "move-do") and day is not None:
            answer = self._booking_availability(self.api(request), branch["id"], service["id"], day)
            page.update(step="time", date=day, times=free_times(answer), closed=answer.get("closed"),
                        day_name=local_date(datetime.combine(day, datetime.min.time(), LOCAL), lang),
                        field_error="start" if form["action"] == "move-confirm" else None)
            return render(request, "manage_move.html", status=422 if page["field_error"] or error else 200, **page)
        today = self._booking_today()
        month = parse_month(form["month"]) or today.replace(day=1)
        window = (branch.get("booking_window") or {}).get("max_days_ahead") or 30
        first, last = today.replace(day=1), today + timedelta(days=window)
        month = min(max(month, first), last.replace(day=1))
        weeks = self._booking_month(request, branch, service["id"], month)
        page.update(step="day", month=month, weeks=weeks, month_label=month_name(month, lang),
                    previous_month=add_months(month, -1) if month > first else None,
                    next_month=add_months(month, 1) if add_months(month, 1) <= last else None,
                    min_date=today.isoformat(), max_date=last.isoformat(),
                    closed_days=[c for week in weeks for c in week if c and c["state"] == "closed"],
                    field_error="date" if form["action"] == "move-time" else None)
        return render(request, "manage_move.html", status=422 if page["field_error"] else 200, **page)
