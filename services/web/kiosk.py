"""The kiosk of a branch: check in with a booking's QR code or reference, or take a walk-in ticket."""
from services.web.site import Site


class KioskPages(Site):
    pass
