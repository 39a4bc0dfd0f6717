"""The waiting-room display of a branch, live."""
from services.web.site import Site


class DisplayPages(Site):
    pass
