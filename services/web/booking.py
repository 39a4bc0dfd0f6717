"""The booking site: choose a centre, service, day and time, give the details, confirm; manage a booking."""
from services.web.site import Site


class BookingPages(Site):
    pass
