"""The availability service: thin nameko glue over commands.py and projection.py."""
from marshmallow import Schema, fields
from nameko.dependency_providers import Config
from nameko.timer import timer

from shared.clock import clock
from shared.messaging import subscribe
from shared.projection import apply_once
from shared.dependencies import Storage
from shared.web import api, parse_query
from services.availability import commands, projection


class BranchesQuery(Schema):
    directorate = fields.String(load_default=None)


class AvailabilityQuery(Schema):
    branch = fields.String(required=True)
    service = fields.String(required=True)
    date = fields.Date(required=True)


class AvailabilityService:
    name = "availability"
    db = Storage(projection.metadata)
    config = Config()

    @timer(interval=300, eager=True)
    def sync_catalogue(self):
        """Record what changed in the catalogue file: at start, then every five minutes."""
        commands.sync_catalogue(self.db, self.config.get("MAWAEED_CATALOGUE"))

    @subscribe(projection.BOOKINGS_CONSUMER)
    def on_booking_event(self, event):
        apply_once(self.db, projection.BOOKINGS_CONSUMER, event, projection.apply_booking_event)

    @api("GET", "/api/v1/directorates")
    def directorates(self, request):
        return commands.directorates(self.db)

    @api("GET", "/api/v1/branches")
    def branches(self, request):
        return commands.branches(self.db, parse_query(request, BranchesQuery())["directorate"])

    @api("GET", "/api/v1/availability")
    def availability(self, request):
        query = parse_query(request, AvailabilityQuery())
        return commands.availability(self.db, query["branch"], query["service"], query["date"], clock.now())
