"""The kiosk of a branch: check in with a booking's QR code or reference, or take a walk-in ticket.

The kiosk is a paired device (devices.py): its pages call the API with the kiosk's own token. Every step is a plain
form posted here; the next step is rendered, or the same step with the API's refusal next to its field. After a
check-in the browser is sent (303) to the ticket's page, so reloading it never takes a second ticket.
"""
import re

import segno
from werkzeug.utils import redirect

from shared.web import api
from services.web.client import ApiError
from services.web.devices import authorization, claimed, not_paired, paired
from services.web.i18n import language_of
from services.web.pages import render
from services.web.site import Site

CPR = re.compile(r"\d{9}\Z")
REFERENCE = re.compile(r"[A-Z0-9]{4}-?[A-Z0-9]{4}")
PRIORITIES = ("elderly", "disabled")


def scanned_reference(text: str) -> str:
    """The booking reference in what a QR scanner or a person typed: the reference itself (any case, with or
    without the dash or spaces), or a link or text that ends with one."""
    plain = re.sub(r"\s+", "", text or "").upper()
    found = REFERENCE.findall(plain)
    return found[-1] if found else plain


def field_errors(refused: ApiError, known: tuple) -> dict:
    """The API's invalid fields, as codes the templates word in the page's language."""
    return {name: f"{name}_invalid" for name in refused.fields if name in known}


def qr_svg(url: str) -> str:
    """The link as a QR code, inline SVG markup (no file, no other host), sized by the style sheet; the
    template names it (role="img" on its container)."""
    return segno.make(url, error="m").svg_inline(scale=4, border=4, omitsize=True, svgclass="qr", lineclass=None,
                                                 dark="#000", light="#fff")


class KioskPages(Site):
    def _device_api(self, request):
        return self.api(request, authorization(request))

    def _branch(self, request, branch_id: str) -> dict | None:
        return next((b for b in self._device_api(request).get("/api/v1/branches") if b["id"] == branch_id), None)

    def _kiosk_page(self, request, branch_id: str, template: str, status: int = 200, **context):
        """The page, or why this kiosk cannot show it (paired elsewhere, an unknown branch)."""
        claims = claimed(request, self.config.get("MAWAEED_OIDC_AUDIENCE") or "mawaeed")
        if claims is not None and (not claims.has("kiosk", "clerk", "branch_manager", "directorate_admin")
                                   or (claims.has("kiosk") and branch_id not in claims.branches)):
            return not_paired(request, "elsewhere", status=403)
        branch = self._branch(request, branch_id)
        if branch is None:
            return render(request, "kiosk_unpaired.html", status=404, reason="unknown_branch", retry=request.path)
        return render(request, template, status=status, branch=branch, **context)

    @api("GET", "/kiosk/<branch>")
    @paired
    def kiosk(self, request, branch):
        """The kiosk's first screen: scan the booking's QR code (the reference field is focused, as a scanner
        types) or type the reference and CPR; or go on to take a walk-in ticket."""
        return self._kiosk_page(request, branch, "kiosk.html", form={}, errors={})

    @api("POST", "/kiosk/<branch>/check-in")
    @paired
    def kiosk_check_in(self, request, branch):
        form = request.form
        reference, cpr = scanned_reference(form.get("reference", "")), form.get("cpr", "").strip()
        errors = {}
        if not reference:
            errors["reference"] = "reference_missing"
        elif not REFERENCE.fullmatch(reference):
            errors["reference"] = "reference_invalid"
        if not cpr:
            errors["cpr"] = "cpr_missing"
        elif not CPR.match(cpr):
            errors["cpr"] = "cpr_invalid"
        if not errors:
            try:
                answer = self._device_api(request).post(f"/api/v1/branches/{branch}/check-ins",
                                                        {"reference": reference, "cpr": cpr})
            except ApiError as refused:
                if refused.status in (401, 403) and refused.code in ("UNAUTHENTICATED", "FORBIDDEN"):
                    raise
                return self._kiosk_page(request, branch, "kiosk.html", status=refused.status,
                                        form={"reference": reference}, errors=field_errors(refused, ("reference", "cpr")),
                                        problem=refused.message(language_of(request)))
            return self._to_ticket(branch, answer)
        # a scanner sends the reference with Enter: the CPR is asked next, without calling the API
        return self._kiosk_page(request, branch, "kiosk.html", status=422, form={"reference": reference},
                                errors=errors)

    @api("GET", "/kiosk/<branch>/walk-in")
    @paired
    def kiosk_walk_in(self, request, branch):
        """A ticket without a booking: the service, a priority group if any, and the CPR."""
        return self._kiosk_page(request, branch, "kiosk_walk_in.html", form={}, errors={})

    @api("POST", "/kiosk/<branch>/walk-in")
    @paired
    def kiosk_take_ticket(self, request, branch):
        form = request.form
        service, cpr = form.get("service", "").strip(), form.get("cpr", "").strip()
        priority = form.get("priority", "") if form.get("priority") in PRIORITIES else ""
        errors = {}
        if not service:
            errors["service"] = "service_missing"
        if not cpr:
            errors["cpr"] = "cpr_missing"
        elif not CPR.match(cpr):
            errors["cpr"] = "cpr_invalid"
        kept = {"service": service, "priority": priority}
        if errors:
            return self._kiosk_page(request, branch, "kiosk_walk_in.html", status=422, form=kept, errors=errors)
        try:
            answer = self._device_api(request).post(f"/api/v1/branches/{branch}/check-ins", {
                "walk_in": True, "service": service, "cpr": cpr, "priority": priority or None,
                "language": language_of(request)})
        except ApiError as refused:
            if refused.status in (401, 403) and refused.code in ("UNAUTHENTICATED", "FORBIDDEN"):
                raise
            return self._kiosk_page(request, branch, "kiosk_walk_in.html", status=refused.status, form=kept,
                                    errors=field_errors(refused, ("service", "cpr", "priority")),
                                    problem=refused.message(language_of(request)))
        return self._to_ticket(branch, answer)

    def _to_ticket(self, branch: str, answer: dict):
        return redirect(f"/kiosk/{branch}/ticket/{answer['link']['token']}", code=303)

    @api("GET", "/kiosk/<branch>/ticket/<token>")
    @paired
    def kiosk_ticket(self, request, branch, token):
        """The ticket to take away (printable on 80 mm paper): number, service, place and wait, and the QR code
        of its live page."""
        try:
            ticket = self._device_api(request).get(f"/api/v1/tickets/by-token/{token}")
        except ApiError as refused:
            if refused.status in (401, 403):
                raise
            return self._kiosk_page(request, branch, "kiosk_ticket.html", status=refused.status, ticket=None,
                                    problem=refused.message(language_of(request)))
        if ticket["branch"] != branch:
            return self._kiosk_page(request, branch, "kiosk_ticket.html", status=404, ticket=None)
        url = f"{(self.config.get('MAWAEED_PUBLIC_URL') or '').rstrip('/')}/t/{token}"
        return self._kiosk_page(request, branch, "kiosk_ticket.html", ticket=ticket, url=url,
                                qr=qr_svg(url))
