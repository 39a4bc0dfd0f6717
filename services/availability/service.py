"""The availability service: thin nameko glue over commands.py and projection.py."""
from marshmallow import Schema, fields
from nameko.dependency_providers import Config
from nameko.timer import timer

from shared.clock import clock
from shared.contracts.fields import Day
from shared.messaging import apply_all_once, subscribe
from shared.dependencies import Storage
from shared.openapi import documented
from services.availability import answers
from shared.web import api, parse_query, started
from services.availability import commands, projection


# booking's events waiting for this projection, applied in one transaction (shared/messaging.py)
BATCH = 200


class BranchesQuery(Schema):
    directorate = fields.String(load_default=None)


class AvailabilityQuery(Schema):
    branch = fields.String(required=True)
    service = fields.String(required=True)
    date = Day(required=True)


class AvailabilityService:
    name = "availability"
    db = Storage(projection.metadata)
    config = Config()
    startup_steps = ("catalogue",)  # not ready (/health/ready) before the catalogue file is in the log

    @timer(interval=300, eager=True)
    def sync_catalogue(self):
        """Record what changed in the catalogue file: at start, then every five minutes."""
        commands.sync_catalogue(self.db, self.config.get("MAWAEED_CATALOGUE"))
        started(self.name, "catalogue")

    @subscribe(projection.BOOKINGS_CONSUMER, batch=BATCH)
    def on_booking_event(self, events):
        apply_all_once(self.db, projection.BOOKINGS_CONSUMER, events, projection.apply_booking_event)

    @api("GET", "/api/v1/directorates")
    @documented(answers={200: answers.Directorate(many=True)}, summary="The directorates")
    def directorates(self, request):
        return commands.directorates(self.db)

    @api("GET", "/api/v1/branches")
    @documented(query=BranchesQuery, answers={200: answers.Branch(many=True)}, errors=("UNKNOWN_DIRECTORATE",),
                summary="The branches, of one directorate or all")
    def branches(self, request):
        return commands.branches(self.db, parse_query(request, BranchesQuery())["directorate"])

    @api("GET", "/api/v1/availability")
    @documented(query=AvailabilityQuery, answers={200: answers.Availability},
                errors=("UNKNOWN_BRANCH", "UNKNOWN_SERVICE"), summary="A day's slots of a service at a branch")
    def availability(self, request):
        query = parse_query(request, AvailabilityQuery())
        return commands.availability(self.db, query["branch"], query["service"], query["date"], clock.now())
