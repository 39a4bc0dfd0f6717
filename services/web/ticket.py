"""After check-in: the live ticket page, and the feedback page after the visit."""
from services.web.site import Site


class TicketPages(Site):
    pass
