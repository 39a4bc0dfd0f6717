"""Staff sign-in, the counter console and the centre manager's page."""
from services.web.site import Site


class StaffPages(Site):
    pass
