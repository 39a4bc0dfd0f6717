"""Reading a service's events feed (GET /api/v1/events) page by page: catch-up and replay."""
import json
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from shared.contracts import from_dict, upcast
from shared.events import Event


def read_feed(base_url: str, service: str, after: int = 0, page_size: int = 1000, timeout: float = 30,
              authorization=None):
    """Every event of `service` after position `after`, oldest first, upcast to the latest versions.
    `authorization()` gives the Authorization header (a bearer token of a subscriber that may read it)."""
    while True:
        query = urlencode({"service": service, "after": after, "limit": page_size})
        headers = {"Authorization": authorization()} if authorization else {}
        request = Request(f"{base_url.rstrip('/')}/api/v1/events?{query}", headers=headers)
        with urlopen(request, timeout=timeout) as response:
            page = json.load(response)
        events: list[Event] = [upcast(from_dict(e)) for e in page["events"]]
        yield from events
        if len(events) < page_size:
            return
        after = page["next_after"]
