"""The waiting-room display of a branch, live: the screen in the hall (a TV in kiosk mode, paired once with a
display device token) and the public live stream of a branch's board that feeds it (live.py)."""
import re

from werkzeug.wrappers import Response

from shared.auth import verifier_for
from shared.clock import LOCAL, clock
from shared.errors import DomainError, NotFound
from shared.messaging import subscribe
from shared.web import api, json_response
from services.web.client import ApiError
from services.web.devices import device_token, pair
from services.web.live import LiveBoards
from services.web.pages import render
from services.web.site import Site

BRANCH_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")


def _known_branch(branch: str) -> str:
    if not BRANCH_ID.match(branch):
        raise NotFound("There is no such branch.", code="UNKNOWN_BRANCH", message_ar="الفرع غير معروف.")
    return branch


class DisplayPages(Site):
    live = LiveBoards()

    @subscribe("web.queue")
    def on_queue_event(self, event):
        """A change in a branch's waiting room: its screens get the new board (one fetch for all of them).
        Applied without apply_once (this service keeps no database): a duplicate only refreshes once more."""
        self.live.changed((event.payload or {}).get("branch"))

    @api("GET", "/api/v1/branches/<branch>/live")
    def live_board(self, request, branch):
        """The public board of a branch as a stream of Server-Sent Events: the current board, then each change."""
        _known_branch(branch)
        screen = self.live.join(branch)  # joined before the first board is read: no change falls in between
        try:
            first = self.live.current(branch)
        except ApiError as refused:
            self.live.leave(branch, screen)
            return json_response({"error": refused.error}, refused.status)
        except BaseException:
            self.live.leave(branch, screen)
            raise
        # eventlet's server gathers 4 KiB before it writes a chunk; a stream's messages must go out at once
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        return Response(self.live.stream(branch, screen, first), content_type="text/event-stream; charset=utf-8",
                        headers={"X-Accel-Buffering": "no"})

    @api("GET", "/display/<branch>")
    def display(self, request, branch):
        """The hall's screen: what is called where, the last calls, who waits how long; no names or numbers of
        people, only tickets. Only a display device paired for this branch shows it."""
        pairing = pair(request)  # ?device=: kept in an HttpOnly cookie, out of the address bar and history
        if pairing is not None:
            return pairing
        token = device_token(request)
        if not self._paired(token, branch):
            return render(request, "display_unpaired.html", status=403 if token else 401,
                          reason="other" if token else "unpaired")
        try:
            board = self.api(request).get(f"/api/v1/branches/{_known_branch(branch)}/board")
        except (ApiError, DomainError) as refused:
            status = getattr(refused, "status", 404)
            return render(request, "display_unpaired.html", status=status,
                          reason="unavailable" if status >= 500 else "unknown")
        return render(request, "display.html", board=board, branch=branch,
                      now=clock.now().astimezone(LOCAL).strftime("%H:%M"))

    def _paired(self, token: str | None, branch: str) -> bool:
        if not token:
            return False
        try:
            principal = verifier_for(self.config).principal(f"Bearer {token}")
        except DomainError:  # expired, forged, or of another issuer
            return False
        return principal.may_act_at(("display",), branch, None)
