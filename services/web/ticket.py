"""After check-in: the live ticket page, and the feedback page after the visit.

Both are opened from a link (the printed ticket's QR code; the survey SMS) by whoever holds it, with no sign-in:
the link's token is all they show, and the API answers nothing personal about it.
"""
from shared.web import api
from services.web.client import ApiError
from services.web.i18n import language_of
from services.web.pages import render
from services.web.site import Site

SCORES = ("1", "2", "3", "4", "5")
MAX_COMMENT = 1000
POLL_SECONDS = 5


class TicketPages(Site):
    # -- the live ticket ---------------------------------------------------------------------------------
    @api("GET", "/t/<token>")
    def live_ticket(self, request, token):
        """Number, place in line and estimated wait, then the counter once called; ticket.js asks the API again
        every few seconds, and without scripts the page's own link (or a reload) shows the latest."""
        try:
            ticket = self.api(request).get(f"/api/v1/tickets/by-token/{token}")
        except ApiError as refused:
            status = refused.status if refused.status in (404, 422, 429, 503) else 503
            return render(request, "ticket.html", status=404 if status == 422 else status, ticket=None, token=token,
                          problem=refused.message(language_of(request)), code=refused.code)
        return render(request, "ticket.html", ticket=ticket, token=token, poll_seconds=POLL_SECONDS)

    # -- feedback ------------------------------------------------------------------------------------------
    def _feedback(self, request, token: str, status: int = 200, **context):
        """The feedback page of a link: the form while it can be used, else why not (made up, used, too early)."""
        try:
            visit = self.api(request).get(f"/api/v1/feedback/{token}")
        except ApiError as refused:
            return render(request, "feedback.html", status=404 if refused.status in (404, 422) else refused.status,
                          visit=None, token=token, code=refused.code,
                          problem=refused.message(language_of(request)), form={}, errors={})
        if visit["rated"]:
            status = 410  # used: gone for good, and the page thanks them rather than offering a form
        elif not visit["served"]:
            status = 409  # not yet: the same link works once the visit is over
        return render(request, "feedback.html", status=status, visit=visit, token=token,
                      **{"form": {}, "errors": {}, **context})

    @api("GET", "/feedback/<token>")
    def feedback_page(self, request, token):
        """How was the visit: a score from 1 to 5 and an optional comment, sent together with one button."""
        return self._feedback(request, token)

    @api("POST", "/feedback/<token>")
    def feedback_send(self, request, token):
        score, comment = request.form.get("score", ""), request.form.get("comment", "").strip()
        errors = {}
        if score not in SCORES:
            errors["score"] = "score_missing"
        if len(comment) > MAX_COMMENT:
            errors["comment"] = "comment_too_long"
        form = {"score": score, "comment": comment}
        if errors:
            return self._feedback(request, token, status=422, form=form, errors=errors)
        try:
            self.api(request).post("/api/v1/feedback", {"token": token, "score": int(score),
                                                         "comment": comment or None})
        except ApiError as refused:
            if refused.code in ("FEEDBACK_ALREADY_GIVEN", "FEEDBACK_TOKEN_UNKNOWN", "VISIT_NOT_SERVED",
                                "TICKET_NOT_FOUND"):
                return self._feedback(request, token, status=refused.status)  # says why, with no form
            errors = {name: f"{name}_invalid" for name in refused.fields if name in ("score", "comment")}
            return self._feedback(request, token, status=refused.status, form=form, errors=errors,
                                  problem=refused.message(language_of(request)))
        return render(request, "feedback_thanks.html", score=int(score))
