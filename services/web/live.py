"""Live boards: each change of a branch's waiting room pushed to every screen in its hall, by Server-Sent Events.

One stream per branch, fed by the queue's events, not one query per screen per second:

    queue ──(web.queue: CustomerCheckedIn, TicketCalled, ...)──▶ LiveBoards.changed(branch)
                                                                     │ one GET /api/v1/branches/{branch}/board
                                                                     ▼ (a burst of events: one fetch at a time)
                                                     every connected screen of that branch (an eventlet queue each)

The web service keeps no database, so its subscription is live only (shared/topology.py): it does not catch up
from the queue's feed and does not record what it applied. Neither is needed: an event only says "this branch
changed, fetch its board", so a duplicate costs one extra fetch and changes nothing, and a screen that
(re)connects is sent the current board first, whatever it missed while away. A board is also fetched once a
minute per branch that has screens, which heals an event lost with the in-memory broker or a restart.

A stream (`stream()`) is `retry: 2000` and the current board, then one `data:` message per change, and a
heartbeat every 15 s: a comment line (which keeps proxies from closing an idle connection) followed by a `ping`
event (comments never reach a page's script, so the display's watchdog listens for the ping).

Every board and every ping carries `now`: the suite's clock (shared.clock, Bahrain time, ISO 8601 with
milliseconds) when the message was written, so a screen's clock follows the suite's, not the TV's own.
"""
import json
import logging
import time
from collections import defaultdict

import eventlet
from eventlet.queue import Empty, Full, LightQueue
from nameko.extensions import DependencyProvider

from shared.clock import LOCAL, clock
from services.web.client import Api

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
RETRY_MILLISECONDS = 2000
RESYNC_SECONDS = 60       # a fresh board this often for each branch with screens, events or not
FRESH_SECONDS = 10        # a board this recent, kept fresh by events, is what a newly connected screen gets
BACKLOG = 8               # boards waiting for a slow screen; beyond, the oldest goes (each board is the whole state)


def server_now() -> str:
    """The suite's time now, as the screens are told it: local (Bahrain), ISO 8601 with milliseconds."""
    return clock.now().astimezone(LOCAL).isoformat(timespec="milliseconds")


def sse(data: dict | None = None, event: str | None = None, comment: str | None = None,
        retry: int | None = None) -> bytes:
    """One Server-Sent Events message."""
    lines = []
    if comment is not None:
        lines.append(f": {comment}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class Screen:
    """One connected screen: the messages not yet sent to it."""

    def __init__(self):
        self.inbox = LightQueue(maxsize=BACKLOG)

    def offer(self, message: bytes) -> None:
        try:
            self.inbox.put_nowait(message)
        except Full:  # a slow screen: drop its oldest board; the newest holds the last calls anyway
            try:
                self.inbox.get_nowait()
            except Empty:
                pass
            self.inbox.put_nowait(message)


class Hub:
    """The screens of every branch in this process, and the one refresh per branch that feeds them.
    `fetch(branch)` gives a branch's public board (the API's answer) or raises."""

    def __init__(self, fetch, heartbeat: float = HEARTBEAT_SECONDS, resync: float = RESYNC_SECONDS,
                 now=server_now):
        self.fetch, self.heartbeat, self.resync, self.now = fetch, heartbeat, resync, now
        self.screens: dict[str, set[Screen]] = defaultdict(set)
        self.boards: dict[str, tuple[float, dict]] = {}  # branch -> (fetched at, board), while it has screens
        self.fetches = 0
        self._dirty: set[str] = set()
        self._refreshing: dict[str, object] = {}
        self._ticker = None

    # -- screens ---------------------------------------------------------------------------------------
    def join(self, branch: str) -> Screen:
        screen = Screen()
        self.screens[branch].add(screen)
        return screen

    def leave(self, branch: str, screen: Screen) -> None:
        screens = self.screens.get(branch)
        if screens is not None:
            screens.discard(screen)
            if not screens:
                del self.screens[branch]
                self.boards.pop(branch, None)  # nobody keeps it fresh now

    def connected(self, branch: str | None = None) -> int:
        return len(self.screens.get(branch, ())) if branch else sum(map(len, self.screens.values()))

    def current(self, branch: str) -> dict:
        """The board a newly connected screen starts with: the one kept fresh by events if it is recent, else
        fetched now (an unknown branch raises the API's 404)."""
        kept = self.boards.get(branch)
        if kept and branch not in self._dirty and time.monotonic() - kept[0] < FRESH_SECONDS:
            return kept[1]
        board = self._fetch(branch)
        if self.screens.get(branch):
            self.boards[branch] = (time.monotonic(), board)
        return board

    # -- changes ---------------------------------------------------------------------------------------
    def changed(self, branch: str) -> None:
        """Something happened at `branch`: refresh its board for its screens (none connected: nothing to do, a
        screen that connects later fetches the board then). Events that come while a refresh runs are folded
        into one more refresh after it, so a burst costs two fetches, not one per event."""
        if not branch or not self.screens.get(branch):
            return
        self._dirty.add(branch)
        if branch not in self._refreshing:
            self._refreshing[branch] = eventlet.spawn(self._refresh, branch)

    def _refresh(self, branch: str) -> None:
        try:
            failures = 0
            while branch in self._dirty and self.screens.get(branch):
                self._dirty.discard(branch)
                try:
                    board = self._fetch(branch)
                except Exception as exc:  # the API is away: try a few times, then wait for the next change
                    failures += 1
                    log.warning("live board of %s not refreshed (%s); attempt %d", branch, exc, failures)
                    if failures >= 3:
                        return
                    self._dirty.add(branch)
                    eventlet.sleep(0.5 * failures)
                    continue
                failures = 0
                self.boards[branch] = (time.monotonic(), board)
                message = sse(self.stamped(board))
                for screen in list(self.screens.get(branch, ())):
                    screen.offer(message)
        finally:
            self._refreshing.pop(branch, None)

    def stamped(self, board: dict) -> dict:
        """The board as a screen is sent it: with the suite's time now."""
        return {**board, "now": self.now()}

    def _fetch(self, branch: str) -> dict:
        self.fetches += 1
        return self.fetch(branch)

    def start_resync(self) -> None:
        if self._ticker is None:
            self._ticker = eventlet.spawn(self._resync_forever)

    def stop(self) -> None:
        for thread in [self._ticker, *self._refreshing.values()]:
            if thread is not None:
                thread.kill()
        self._ticker = None

    def _resync_forever(self) -> None:
        while True:
            eventlet.sleep(self.resync)
            for branch in list(self.screens):
                self.changed(branch)

    # -- the stream ------------------------------------------------------------------------------------
    def stream(self, branch: str, screen: Screen, first: dict):
        """What a connected screen reads: the board it starts with, then each change, and the heartbeat."""
        try:
            yield sse(self.stamped(first), retry=RETRY_MILLISECONDS)
            while True:
                try:
                    yield screen.inbox.get(timeout=self.heartbeat)
                except Empty:
                    yield sse({"at": time.time(), "now": self.now()}, event="ping", comment="heartbeat")
        finally:  # the screen went away (the server noticed on a write) or the server stops
            self.leave(branch, screen)


class LiveBoards(DependencyProvider):
    """The hub of this web service, one per container, fetching boards from the suite's public API."""

    def setup(self):
        config = self.container.config
        base_url = config.get("MAWAEED_API_URL") or config["MAWAEED_FEED_URL"]
        self.hub = Hub(lambda branch: Api(base_url, timeout=10).get(f"/api/v1/branches/{branch}/board"))

    def start(self):
        self.hub.start_resync()

    def stop(self):
        self.hub.stop()

    def kill(self):
        self.hub.stop()

    def get_dependency(self, worker_ctx):
        return self.hub
