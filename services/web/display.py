"""The waiting-room display of a branch, live: the screen in the hall (a TV in kiosk mode, paired once with a
display device token) and the public live stream of a branch's board that feeds it (live.py).

The stream is public, so an open screen would never learn that its token was revoked or has expired: display.js
asks `/display/<branch>/paired` every couple of minutes (and each time the stream comes back), and reloads the
page when it is refused (401/403), which then shows "no longer paired". When the issuer's keys are out of reach the
check answers 503 and the screen goes on showing the board: a short outage of the sign-in server unpairs nothing."""
import re
from datetime import datetime

from werkzeug.wrappers import Response

from shared.auth import forbidden, unauthenticated, verifier_for
from shared.clock import LOCAL, clock
from shared.errors import DomainError, NotFound
from shared.messaging import subscribe
from shared.openapi import Content, documented
from shared.web import api, error_response, json_response
from services.web.client import ApiError
from services.web.devices import device_token, keys_out_of_reach, pair
from services.web.live import LiveBoards
from services.web.pages import render
from services.web.site import Site

BRANCH_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
PAIRING_CHECK_SECONDS = 120           # how often an open screen asks whether it is still paired
PAIRING_CHECK_MIN_SECONDS = 2         # ?pairing_check=<seconds> may make it sooner (tests, a first set-up), not more


def pairing_check_seconds(request) -> int:
    """How often the page's script checks its pairing: every 2 minutes, or `?pairing_check=<seconds>` (at least
    2 s, at most the default)."""
    try:
        asked = int(request.args.get("pairing_check", ""))
    except ValueError:
        return PAIRING_CHECK_SECONDS
    return max(PAIRING_CHECK_MIN_SECONDS, min(asked, PAIRING_CHECK_SECONDS))


def clock_context(now: datetime | None = None, speed: float | None = None) -> dict:
    """The display's clock as the page is served: the suite's time (shared.clock, Bahrain), not the screen's.
    `now` is shown as it is (HH:MM, for a screen without scripts); `now_iso` (with milliseconds) and
    `clock_speed` let display.js keep the offset between the suite's time and the browser's and tick with it
    (the live stream's messages carry `now` too, and re-anchor it)."""
    instant = (now or clock.now()).astimezone(LOCAL)
    return {"now": instant.strftime("%H:%M"), "now_iso": instant.isoformat(timespec="milliseconds"),
            "clock_speed": clock.speed if speed is None else speed}


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
    @documented(answers={200: Content("text/event-stream", "`retry: 2000`, the board (as /board) in a `data:` message, "
                                          "then one per change; a `ping` event every 15 s.")},
                errors=("UNKNOWN_BRANCH",), summary="The public board of a branch, live (Server-Sent Events)")
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
        pairing = self._pairing(device_token(request), branch)
        if pairing != "paired":
            return render(request, "display_unpaired.html",
                          status={"other": 403, "unavailable": 503}.get(pairing, 401), reason=pairing)
        try:
            board = self.api(request).get(f"/api/v1/branches/{_known_branch(branch)}/board")
        except (ApiError, DomainError) as refused:
            status = getattr(refused, "status", 404)
            return render(request, "display_unpaired.html", status=status,
                          reason="unavailable" if status >= 500 else "unknown")
        return render(request, "display.html", board=board, branch=branch,
                      pairing_check=pairing_check_seconds(request), **clock_context())

    @api("GET", "/display/<branch>/paired")
    def display_paired(self, request, branch):
        """Whether the screen's device cookie still pairs it with this branch, asked by the open page's script:
        204 when it does; 401 without a token or with a refused one (expired, revoked), 403 for another branch or
        another kind of device (the page then reloads and shows why); 503 when the issuer's keys are out of reach
        (the page goes on). Never kept by a cache."""
        pairing = self._pairing(device_token(request), branch)
        if pairing == "paired":
            answer = Response(status=204)
        elif pairing == "unavailable":
            answer = json_response({"error": {
                "code": "UNAVAILABLE", "message": "The pairing cannot be checked now; try again shortly.",
                "message_ar": "لا يمكن التحقق من اقتران الشاشة حاليًا، يرجى المحاولة بعد قليل."}}, 503,
                {"Retry-After": "60"})
        elif pairing == "other":
            answer = error_response(forbidden("This screen is paired with another branch or as another device."))
        else:
            answer = error_response(unauthenticated(
                "This screen is not paired: its device token is missing, expired or withdrawn."))
        answer.headers["Cache-Control"] = "no-store"
        return answer

    def _pairing(self, token: str | None, branch: str) -> str:
        """`paired`; `unpaired` (no token); `refused` (expired, revoked, forged: the token is kept all the same,
        pairing again replaces it); `unavailable` (the issuer's keys are out of reach: nothing can be told, and a
        short outage must not unpair a screen); `other` (a good token, for another branch or another kind of
        device)."""
        if not token:
            return "unpaired"
        try:
            principal = verifier_for(self.config).principal(f"Bearer {token}")
        except DomainError as refused:
            return "unavailable" if keys_out_of_reach(self.config, token, refused) else "refused"
        return "paired" if principal.may_act_at(("display",), branch, None) else "other"
