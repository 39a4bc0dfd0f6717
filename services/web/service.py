"""The web service: the pages people use, each family in its own module, all served here (embedded: on the
suite's port; distributed: through the gateway, which routes by these declarations as for every service)."""
from nameko.dependency_providers import Config

from shared.web import api
from services.web.pages import render, static_file
from services.web.booking import BookingPages
from services.web.display import DisplayPages
from services.web.kiosk import KioskPages
from services.web.staff import StaffPages
from services.web.ticket import TicketPages


class WebService(BookingPages, KioskPages, TicketPages, StaffPages, DisplayPages):
    name = "web"
    config = Config()

    @api("GET", "/static/<path:name>")
    def static(self, request, name):
        return static_file(name)

    @api("GET", "/help")
    def help(self, request):
        """What to bring, how check-in works, and every centre's opening hours."""
        return render(request, "help.html", branches=self.api(request).get("/api/v1/branches"))
