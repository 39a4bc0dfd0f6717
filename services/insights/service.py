"""The insights service: thin nameko glue over projection.py (the rows), queries.py (periods and scopes) and
figures.py (the formulas). It only subscribes; its event log stays empty."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared import catalogue
from shared.auth import forbidden
from shared.clock import clock
from shared.contracts.fields import Day
from shared.dependencies import Storage
from shared.messaging import subscribe
from shared.openapi import documented
from shared.projection import apply_once
from shared.web import api, parse_query
from services.insights import answers, projection, queries

READERS = ("analyst", "branch_manager", "directorate_admin")
ID = validate.Regexp(r"[a-z0-9][a-z0-9-]{0,63}\Z")


class InsightsQuery(Schema):
    branch = fields.String(load_default=None, validate=ID)
    directorate = fields.String(load_default=None, validate=ID)
    all = fields.Boolean(load_default=False)
    from_ = Day(required=True, data_key="from")
    to = Day(required=True)
    by = fields.String(load_default="day", validate=validate.OneOf(queries.PERIODS))
    service = fields.String(load_default=None, validate=ID)

    @validates_schema
    def one_scope_and_a_range(self, data, **kwargs):
        if sum((bool(data.get("branch")), bool(data.get("directorate")), bool(data.get("all")))) != 1:
            raise ValidationError("Give exactly one of branch, directorate or all=true.", "branch")
        if data["to"] < data["from_"]:
            raise ValidationError("`to` is before `from`.", "to")
        if (data["to"] - data["from_"]).days + 1 > queries.MAX_DAYS:
            raise ValidationError(f"At most {queries.MAX_DAYS} days at a time.", "to")


class InsightsService:
    name = "insights"
    db = Storage(projection.metadata)

    @subscribe(projection.BOOKINGS_CONSUMER)
    def on_booking_event(self, event):
        apply_once(self.db, projection.BOOKINGS_CONSUMER, event, projection.apply_booking_event)

    @subscribe(projection.QUEUE_CONSUMER)
    def on_queue_event(self, event):
        apply_once(self.db, projection.QUEUE_CONSUMER, event, projection.apply_queue_event)

    on_catalogue_event = catalogue.keep_copy(projection.CATALOGUE_CONSUMER)

    @api("GET", "/api/v1/insights", allow=READERS)
    @documented(query=InsightsQuery, answers={200: answers.Insights},
                summary="Figures of a branch, a directorate or the country, per day, ISO week or month",
                description="Exactly one of `branch`, `directorate` or `all=true`; `from` and `to` inclusive, at most "
                            "400 days. Analysts see everything, a branch manager their branches, a directorate admin "
                            "their directorates. A figure whose denominator is 0 is null.",
                errors=("INVALID_INPUT", "UNKNOWN_BRANCH", "UNKNOWN_DIRECTORATE"))
    def insights(self, request):
        query = parse_query(request, InsightsQuery())
        scope = ({"branch": query["branch"]} if query["branch"] else
                 {"directorate": query["directorate"]} if query["directorate"] else {"all": True})
        self._require_reach(request.caller, scope)
        return queries.report(self.db, scope, query["from_"], query["to"], query["by"], query["service"],
                              clock.now())

    def _require_reach(self, caller, scope: dict) -> None:
        """Analysts read every scope; a manager their branches, a directorate admin their directorates (and
        their branches); 403 otherwise, before anything is summed."""
        principal = caller.principal
        if principal.has("analyst"):
            return
        if "branch" in scope:
            caller.at(scope["branch"], queries.directorate_of(self.db, scope["branch"]))
        elif "directorate" in scope and principal.has("directorate_admin") \
                and scope["directorate"] in principal.directorates:
            return
        else:
            raise forbidden("Only analysts read a whole directorate or country, or a directorate's own admin.")
