"""Pairing a kiosk or a display with its branch: the screen is opened once with `?device=<token>` (a device token:
role kiosk or display, bound to its branch; `mawaeed token issue --role kiosk --branch B`). The page keeps the
token in an HttpOnly, SameSite=Strict cookie and redirects to the same address without it, so it leaves the
address bar and the history. Later requests call the API with that token as `Authorization: Bearer`; when the API
refuses it (401: revoked or expired), the screen says it is not paired and the cookie is dropped.

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

from shared.auth import Principal, principal_from
from services.web.client import ApiError
from services.web.pages import YEAR, render

COOKIE = "device"      # the cookie that keeps the token
PARAM = "device"       # the query parameter a device is paired with, once
TOKEN = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\Z")  # a JWT's three parts
MAX_TOKEN = 4000       # what fits in a cookie


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


def not_paired(request, reason: str = "missing", status: int = 401):
    """The screen of a device that is not paired: `missing` (no token), `refused` (the API refused the token;
    the cookie is dropped), `elsewhere` (the token is for another branch or another kind of device)."""
    response = render(request, "kiosk_unpaired.html", status=status, reason=reason, retry=request.path)
    if reason == "refused":
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure(request))
    return response


def paired(target):
    """`paired(request)`: the response to send before anything else (the pairing redirect, or the "not paired"
    page when there is no token), or None when the device is paired.
    `@paired` on a page method: the same, then the method; an ApiError 401 it lets out (the API refused the
    device's token) becomes the "not paired" page, and a 403 the "paired elsewhere" one."""
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
                return not_paired(request, "refused")
            if refused.status == 403 and refused.code == "FORBIDDEN":
                return not_paired(request, "elsewhere", status=403)
            raise
    return page
