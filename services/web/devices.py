"""Pairing a kiosk or a display with its branch: the screen is opened once with `?device=<token>` (a device token:
role kiosk or display, bound to its branch; `mawaeed token issue --role kiosk --branch B`). The page keeps the
token in an HttpOnly, SameSite=Strict cookie and redirects to the same address without it, so it leaves the
address bar and the history. Later requests call the API with that token as `Authorization: Bearer`; when the API
refuses it (401: revoked or expired), the screen says it is no longer paired. The cookie is kept all the same
(pairing again replaces it): the API also answers 401 while the issuer's keys are out of reach, and a short outage
of the sign-in server must not unpair every kiosk; when that is what happened (the API's words, or this process
cannot reach the keys either), the screen says it cannot check its pairing now and tries again by itself.

The kiosk's pages need no check of their own: every step is a request, and kiosk.js goes back to the first screen
(a new request) after a minute without a touch, so a revoked token shows "not paired" within a minute. The
display's page stays open for days: display.js asks `/display/<branch>/paired` every couple of minutes (display.py).

For a page family's methods (the kiosk's, the display's):

    @api("GET", "/display/<branch>")
    @paired
    def display(self, request, branch):
        board = self.api(request, authorization(request)).get(...)   # an ApiError 401 becomes the "not paired" page

or, without the decorator, `paired(request)` gives the response to send first (the pairing redirect or the "not
paired" page) or None when the device is paired, and `not_paired(request)` the page for a refused token.
"""
import functools
import re
from urllib.parse import urlencode

import jwt
from werkzeug.utils import redirect
from werkzeug.wrappers import Request

from shared.auth import Principal, principal_from, verifier_for
from services.web.client import ApiError
from services.web.pages import YEAR, render

COOKIE = "device"      # the cookie that keeps the token
PARAM = "device"       # the query parameter a device is paired with, once
TOKEN = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\Z")  # a JWT's three parts
MAX_TOKEN = 4000       # what fits in a cookie
KEYS_OUT_OF_REACH = "cannot be checked now"  # shared/auth.py's words when the issuer's keys cannot be fetched
UNAVAILABLE_RETRY_SECONDS = 30              # the "cannot check now" page tries again by itself after this


def device_token(request) -> str | None:
    """The paired device's token (from its cookie), or None."""
    token = request.cookies.get(COOKIE) or ""
    return token if TOKEN.match(token) and len(token) <= MAX_TOKEN else None


def authorization(request) -> str | None:
    """The `Authorization` header value the device's API calls carry, or None when not paired."""
    token = device_token(request)
    return f"Bearer {token}" if token else None


def claimed(request, audience: str = "mawaeed") -> Principal | None:
    """The role and branches the device's token claims, read WITHOUT checking its signature: only to tell a
    screen that it is paired to another branch or as another kind of device. The API checks the token on every
    call; never decide anything else with this."""
    token = device_token(request)
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return principal_from(claims, audience)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


def _secure(request) -> bool:
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def pair(request):
    """A request carrying `?device=`: the redirect to the same address without it, which keeps the token in the
    cookie. None for any other request."""
    if PARAM not in request.args:
        return None
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != PARAM]
    response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), code=303)
    token = request.args.get(PARAM, "").strip()
    if TOKEN.match(token) and len(token) <= MAX_TOKEN:
        response.set_cookie(COOKIE, token, max_age=YEAR, path="/", httponly=True, samesite="Strict",
                            secure=_secure(request))
    else:  # not a token at all: whatever was kept before is not what the person meant either
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure(request))
    return response


def keys_out_of_reach(config: dict, token: str | None, refused: Exception | None = None) -> bool:
    """Whether a refusal of `token` may be only the issuer's keys being out of reach (not the token's fault):
    the refusal says so (shared/auth.py, the issuer's discovery or key set does not answer), or this process
    cannot fetch the token's signing key either. Anything else (expired, revoked, forged, a key the issuer does
    not publish) is False."""
    if refused is not None and KEYS_OUT_OF_REACH in str(refused):
        return True
    if not token:
        return False
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return False
    if not kid:
        return False
    try:
        verifier_for(config).keys.signing_key(kid)
    except (OSError, jwt.PyJWKClientConnectionError):
        return True
    except Exception:  # an unknown key, a bad setting: not an outage
        return False
    return False


def not_paired(request, reason: str = "missing", status: int = 401):
    """The screen of a device that is not paired: `missing` (no token), `refused` (the API refused the token),
    `elsewhere` (the token is for another branch or another kind of device), `unavailable` (its pairing cannot
    be checked now: the issuer's keys are out of reach; the page tries again by itself). The cookie is never
    dropped here: a refusal may be a short outage, and pairing again replaces it."""
    return render(request, "kiosk_unpaired.html", status=status, reason=reason, retry=request.path,
                  retry_seconds=UNAVAILABLE_RETRY_SECONDS)


def paired(target):
    """`paired(request)`: the response to send before anything else (the pairing redirect, or the "not paired"
    page when there is no token), or None when the device is paired.
    `@paired` on a page method: the same, then the method; an ApiError 401 it lets out (the API refused the
    device's token) becomes the "not paired" page (or, the issuer's keys out of reach, the 503 "cannot check
    now" one), and a 403 the "paired elsewhere" one."""
    if isinstance(target, Request):
        request = target
        first = pair(request)
        if first is not None:
            return first
        return None if device_token(request) else not_paired(request)

    @functools.wraps(target)
    def page(self, request, *args, **kwargs):
        first = paired(request)
        if first is not None:
            return first
        try:
            return target(self, request, *args, **kwargs)
        except ApiError as refused:
            if refused.status == 401:
                if keys_out_of_reach(getattr(self, "config", None) or {}, device_token(request), refused):
                    return not_paired(request, "unavailable", status=503)
                return not_paired(request, "refused")
            if refused.status == 403 and refused.code == "FORBIDDEN":
                return not_paired(request, "elsewhere", status=403)
            raise
    return page
