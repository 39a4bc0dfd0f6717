"""Staff sign-in, the counter console and the centre manager's page.

Every page here needs a signed-in member of staff (services/web/signin.py): without a valid session it sends the
browser to /signin?next=<the page>, and a 401 from the API does the same. The pages call the API with the session's
token, so the API's own rules decide what each person may do where. Every action is a plain form POST: on success
the browser is sent back to the page (so reloading never repeats a call), on a refusal the page is shown again
with the API's error in the page's language."""
import re
from datetime import datetime
from urllib.parse import quote, urlencode

from werkzeug.utils import redirect

from shared.clock import LOCAL, clock
from shared.web import api
from services.web import signin
from services.web.client import ApiError
from services.web.i18n import language_of
from services.web.pages import render
from services.web.site import Site

COUNTER_ID = re.compile(r"[A-Za-z0-9-]{1,16}\Z")
ACTIONS = ("open", "close", "call-next", "recall", "served", "no-show", "transfer")
TICKET_ACTIONS = ("recall", "served", "no-show", "transfer")
MANAGERS = ("branch_manager", "directorate_admin")


class SignInRequired(Exception):
    pass


def _branch_name(branch: dict, lang: str) -> str:
    return branch.get("name_ar" if lang == "ar" else "name_en") or branch.get("id", "")


def _minutes_since(instant: str | None, now: datetime) -> int | None:
    if not instant:
        return None
    try:
        return max(0, int((now - datetime.fromisoformat(instant)).total_seconds() // 60))
    except ValueError:
        return None


def waiting_lines(room: dict, now: datetime) -> list[dict]:
    """The room's lines, each ticket with how long it has waited and each line with its longest wait."""
    lines = []
    for line in room.get("waiting", []):
        tickets = [dict(t, waited_minutes=_minutes_since(t.get("checked_in_at"), now)) for t in line.get("tickets", [])]
        waits = [t["waited_minutes"] for t in tickets if t["waited_minutes"] is not None]
        lines.append(dict(line, tickets=tickets, longest_minutes=max(waits) if waits else None))
    return lines


def bar_chart(rows: list[tuple[str, int]], rtl: bool, width: int = 480, label_width: int = 190,
              row_height: int = 34) -> dict:
    """A horizontal bar chart's geometry (one row per label), mirrored for right-to-left pages."""
    top = max([v for _, v in rows] + [1])
    room = width - label_width - 50
    bars = []
    for i, (label, value) in enumerate(rows):
        length = round(room * value / top) if value else 0
        y = i * row_height
        if rtl:
            bar_x, label_x, value_x = width - label_width - length, width - 4, width - label_width - length - 6
        else:
            bar_x, label_x, value_x = label_width, 4, label_width + length + 6
        bars.append({"label": label, "value": value, "x": bar_x, "y": y + 6, "width": length,
                     "height": row_height - 12, "label_x": label_x, "value_x": value_x, "text_y": y + row_height / 2 + 5})
    return {"width": width, "height": max(1, len(rows)) * row_height, "bars": bars, "rtl": rtl}


def column_chart(rows: list[tuple[str, int]], rtl: bool, width: int = 480, height: int = 200) -> dict:
    """A vertical bar chart's geometry (one column per label, left to right, or right to left in Arabic)."""
    top = max([v for _, v in rows] + [1])
    slot = min(width / max(1, len(rows)), 80)  # a few hours do not make giant columns
    plot = height - 50
    columns = []
    for i, (label, value) in enumerate(rows):
        position = (width / slot - 1 - i) if rtl else i  # Arabic: the first hour at the right
        length = round(plot * value / top) if value else 0
        x = position * slot + slot * 0.2
        columns.append({"label": label, "value": value, "x": round(x, 1), "width": round(slot * 0.6, 1),
                        "y": 20 + plot - length, "height": length, "mid": round(position * slot + slot / 2, 1),
                        "value_y": 20 + plot - length - 6, "label_y": height - 8})
    return {"width": width, "height": height, "columns": columns, "base_y": 20 + plot}


class StaffPages(Site):

    # -- who is signed in -------------------------------------------------------------------------------
    def _staff(self, request):
        """(token, principal) of the signed-in person; SignInRequired without a valid session."""
        token = signin.session_token(request)
        principal = signin.session_principal(request, self.config) if token else None
        if principal is None:
            raise SignInRequired()
        return token, principal

    def _to_signin(self, request, next_page: str | None = None):
        target = f"/signin?next={quote(next_page, safe='')}" if next_page else signin.signin_url(request)
        return signin.drop_session(redirect(target, 303), self.config)

    def _staff_api(self, request, token: str):
        return self.api(request, authorization=f"Bearer {token}")

    # -- sign-in ----------------------------------------------------------------------------------------
    @api("GET", "/signin")
    def signin_page(self, request):
        next_page = signin.safe_next(request.args.get("next"), "")
        if not signin.development_available(self.config):
            try:
                return signin.start(self.config, next_page)
            except signin.SignInFailed as failed:
                return render(request, "signin.html", status=503, problem=failed.reason, development=False)
        return self._development_form(request, next_page)

    def _development_form(self, request, next_page: str, status: int = 200, form=None, errors=None):
        try:
            client = self.api(request)
            branches, directorates = client.get("/api/v1/branches"), client.get("/api/v1/directorates")
        except ApiError as refused:
            return render(request, "signin.html", status=503, development=True, groups=[], next_page=next_page,
                          form={}, errors={}, roles=signin.DEV_ROLES, api_error=refused.message(language_of(request)))
        groups = [(d, [b for b in branches if b.get("directorate") == d["id"]]) for d in directorates]
        return render(request, "signin.html", status=status, development=True, groups=[g for g in groups if g[1]],
                      next_page=next_page, form=form or {}, errors=errors or {}, roles=signin.DEV_ROLES)

    @api("POST", "/signin")
    def signin_development(self, request):
        if not signin.development_available(self.config):  # never with an external issuer
            return render(request, "signin.html", status=404, problem="development_off", development=False)
        form = request.form
        next_page = signin.safe_next(form.get("next"), "")
        role, branch_id, counter = form.get("role", ""), form.get("branch", ""), form.get("counter", "").strip()
        try:
            branches = self.api(request).get("/api/v1/branches")
        except ApiError:
            branches = []
        branch = next((b for b in branches if b["id"] == branch_id), None)
        errors = {}
        if role not in signin.DEV_ROLES:
            errors["role"] = "role"
        if branch is None:
            errors["branch"] = "branch"
        if counter and not COUNTER_ID.match(counter):
            errors["counter"] = "counter"
        if errors:
            return self._development_form(request, next_page, 422, form.to_dict(), errors)
        token = signin.development_token(self.config, role, branch, counter or None)
        if role == "clerk":
            default = f"/counter/{quote(branch_id)}" + (f"?counter={quote(counter)}" if counter else "")
        else:
            default = f"/manage/{quote(branch_id)}"
        return signin.keep_session(redirect(next_page or default, 303), token, self.config)

    @api("GET", "/signin/callback")
    def signin_callback(self, request):
        if signin.development_available(self.config):
            return render(request, "signin.html", status=404, problem="no_issuer", development=False)
        try:
            token, principal, next_page = signin.finish(request, self.config)
        except signin.SignInFailed as failed:
            return signin.forget_flow(render(request, "signin.html", status=400, problem=failed.reason,
                                             development=False), self.config)
        response = redirect(next_page, 303)
        signin.forget_flow(response, self.config)
        return signin.keep_session(response, token, self.config)

    @api("GET", "/signout")
    def signout_page(self, request):
        return signin.drop_session(render(request, "signin_out.html"), self.config)

    @api("POST", "/signout")
    def signout(self, request):
        return signin.drop_session(render(request, "signin_out.html"), self.config)

    # -- the counter console ------------------------------------------------------------------------------
    @api("GET", "/counter/<branch>")
    def counter_console(self, request, branch):
        try:
            token, principal = self._staff(request)
        except SignInRequired:
            return self._to_signin(request)
        counter = request.args.get("counter") or principal.counter or ""
        return self._console(request, branch, token, principal, counter, done=request.args.get("done"),
                             number=request.args.get("number"))

    @api("GET", "/counter/<branch>/waiting")
    def counter_waiting(self, request, branch):
        """The waiting lines alone (the console's script refreshes them every few seconds)."""
        try:
            token, principal = self._staff(request)
            room = self._staff_api(request, token).get(f"/api/v1/branches/{quote(branch, safe='')}/queue")
        except (SignInRequired, ApiError):
            return render(request, "counter_waiting.html", status=409, lines=None, updated=None)
        now = clock.now().astimezone(LOCAL)
        return render(request, "counter_waiting.html", lines=waiting_lines(room, now), updated=now.strftime("%H:%M:%S"))

    @api("POST", "/counter/<branch>/<action>")
    def counter_action(self, request, branch, action):
        form = request.form
        counter = form.get("counter", "").strip()
        back = f"/counter/{quote(branch, safe='')}" + (f"?{urlencode({'counter': counter})}" if counter else "")
        try:
            token, principal = self._staff(request)
        except SignInRequired:
            return self._to_signin(request, back)
        if action not in ACTIONS:
            return self._console(request, branch, token, principal, counter, status=404,
                                 error=("unknown_action", None))
        if not COUNTER_ID.match(counter):
            return self._console(request, branch, token, principal, counter, status=422,
                                 error=("counter", None), fields={"counter": True})
        client = self._staff_api(request, token)
        at_branch = f"/api/v1/branches/{quote(branch, safe='')}/counters/{quote(counter, safe='')}"
        ticket, number = form.get("ticket", ""), form.get("number", "")
        try:
            if action == "open":
                client.post(f"{at_branch}/open", {"services": form.getlist("services")})
                done = "opened"
            elif action == "close":
                client.post(f"{at_branch}/close")
                done = "closed"
            elif action == "call-next":
                called = client.post(f"{at_branch}/call-next")
                done, number = ("called", called["ticket"]["number"]) if called else ("nobody", "")
            else:
                if not ticket:
                    return self._console(request, branch, token, principal, counter, status=409,
                                         error=("no_ticket", None))
                body = {"service": form.get("service", "")} if action == "transfer" else None
                answer = client.post(f"/api/v1/tickets/{quote(ticket, safe='')}/{action}", body)
                number = (answer or {}).get("ticket", {}).get("number", number)
                done = {"recall": "recalled", "served": "served", "no-show": "no_show",
                        "transfer": "transferred"}[action]
        except ApiError as refused:
            if refused.status == 401:
                return self._to_signin(request, back)
            fields = {name: True for name in refused.fields}
            return self._console(request, branch, token, principal, counter, status=refused.status,
                                 error=("api", refused.message(language_of(request))), fields=fields,
                                 chosen=form.getlist("services") if action == "open" else None)
        query = {"counter": counter, "done": done}
        if number:
            query["number"] = number
        return redirect(f"/counter/{quote(branch, safe='')}?{urlencode(query)}", 303)

    def _console(self, request, branch_id, token, principal, counter, status=200, done=None, number=None,
                 error=None, fields=None, chosen=None):
        lang = language_of(request)
        client = self._staff_api(request, token)
        try:
            branches = self.api(request).get("/api/v1/branches")
            branch = next((b for b in branches if b["id"] == branch_id), None)
            if branch is None:
                return render(request, "counter.html", status=404, problem="unknown_branch", branch_id=branch_id)
            room = client.get(f"/api/v1/branches/{quote(branch_id, safe='')}/queue")
        except ApiError as refused:
            if refused.status == 401:
                return self._to_signin(request)
            return render(request, "counter.html", status=refused.status,
                          problem="forbidden" if refused.status == 403 else "unavailable",
                          problem_text=refused.message(lang), branch_id=branch_id)
        now = clock.now().astimezone(LOCAL)
        counter = counter if COUNTER_ID.match(counter or "") else (counter or "")
        state = next((c for c in room.get("counters", []) if c["counter"] == counter), None)
        current = next((t for t in room.get("at_counters", []) if t["counter"] == counter), None)
        names = {s["id"]: s.get("name_ar" if lang == "ar" else "name_en") for s in branch.get("services", [])}
        if chosen is None:
            chosen = state["services"] if state else []
        return render(request, "counter.html", status=status, branch=branch, branch_id=branch_id,
                      branch_name=_branch_name(branch, lang), principal=principal, counter=counter, state=state,
                      current=current, services=branch.get("services", []), names=names, chosen=chosen,
                      lines=waiting_lines(room, now), updated=now.strftime("%H:%M:%S"), done=done, number=number,
                      error=error, fields=fields or {}, room=room,
                      switch_url=f"/counter/{quote(branch_id, safe='')}?" + urlencode(
                          {"counter": counter, "lang": "en" if lang == "ar" else "ar"}))

    # -- the centre manager's page ----------------------------------------------------------------------------
    @api("GET", "/manage/<branch>")
    def manager_page(self, request, branch):
        return self._manager(request, branch, "manager.html")

    @api("GET", "/manage/<branch>/figures")
    def manager_figures(self, request, branch):
        """The figures alone (the page's script refreshes them every few seconds)."""
        return self._manager(request, branch, "manager_figures.html")

    def _manager(self, request, branch_id, template):
        lang = language_of(request)
        fragment = template != "manager.html"
        try:
            token, principal = self._staff(request)
        except SignInRequired:
            return render(request, template, status=401, problem="signin") if fragment else self._to_signin(request)
        if not principal.has(*MANAGERS):
            return render(request, template, status=403, problem="managers_only", branch_id=branch_id)
        try:
            branches = self.api(request).get("/api/v1/branches")
            branch = next((b for b in branches if b["id"] == branch_id), None)
            if branch is None:
                return render(request, template, status=404, problem="unknown_branch", branch_id=branch_id)
            room = self._staff_api(request, token).get(f"/api/v1/branches/{quote(branch_id, safe='')}/queue")
        except ApiError as refused:
            if refused.status == 401 and not fragment:
                return self._to_signin(request)
            return render(request, template, status=refused.status,
                          problem="forbidden" if refused.status == 403 else "unavailable",
                          problem_text=refused.message(lang), branch_id=branch_id)
        now = clock.now().astimezone(LOCAL)
        return render(request, template, **self.figures(room, branch, now, lang), principal=principal,
                      branch_id=branch_id)

    @staticmethod
    def figures(room: dict, branch: dict, now: datetime, lang: str) -> dict:
        """What the manager's page shows, from the waiting room."""
        averages = room.get("averages") or {}
        lines = waiting_lines(room, now)
        waits = [line["longest_minutes"] for line in lines if line["longest_minutes"] is not None]
        counters = room.get("counters", [])
        service_name = lambda line: line.get("name_ar" if lang == "ar" else "name_en") or line["service"]
        hours = [(h["hour"], h["served"]) for h in averages.get("served_by_hour", [])]
        return {
            "branch": branch, "branch_name": _branch_name(branch, lang), "room": room, "lines": lines,
            "waiting": sum(line["count"] for line in lines), "averages": averages,
            "longest_now": max(waits) if waits else None,
            "counters": counters, "counters_open": sum(1 for c in counters if c["open"]),
            "waiting_chart": bar_chart([(service_name(line), line["count"]) for line in lines], lang == "ar"),
            "hours_chart": column_chart(hours, lang == "ar") if hours else None,
            "names": {s["id"]: s.get("name_ar" if lang == "ar" else "name_en") for s in branch.get("services", [])},
            "updated": now.strftime("%H:%M:%S"), "date": room.get("date"), "closed": room.get("closed"),
        }
