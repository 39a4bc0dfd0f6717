"""Signing staff and citizens in to the pages, and keeping them signed in.

With an external issuer (MAWAEED_OIDC_ISSUER): the OpenID Connect authorization code flow with PKCE (S256) as a
public client (MAWAEED_OIDC_WEB_CLIENT_ID). `/signin` sends the browser to the issuer's authorization endpoint
with a fresh `state` and code challenge, keeping the state, the code verifier and where to go next in a
short-lived HttpOnly cookie; `/signin/callback` checks the state, exchanges the code (with the verifier) at the
token endpoint, verifies the access token as the API will (shared.auth.verifier_for) and keeps it in the
`session` cookie (HttpOnly, Secure when the public URL is https, SameSite=Lax, until the token expires).

Citizens sign in through the same flow (the issuer's national-eID login gives a token with role `citizen` and the
person's CPR in its `cpr` claim); with no `next` page they land on their bookings (`/my`). One flow and one client
for everybody: the issuer's login page decides who is who, and the token's role says it.

Without one (the embedded development issuer), `/signin` shows a form that signs a token for a chosen role,
branch and counter, and one for a citizen by CPR (and name); they are never offered when an external issuer is
configured.

Other page families read the signed-in person's token with `session_token(request)` (and, verified,
`session_principal(request, config)`)."""
import base64
import hashlib
import json
import secrets
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import Request, urlopen

import jwt
from werkzeug.utils import redirect

from shared.auth import Principal, Unauthenticated, development_issuer, verifier_for
from shared.contracts.fields import CPR_PATTERN

SESSION_COOKIE = "session"
FLOW_COOKIE = "signin_flow"
FLOW_SECONDS = 600
DEV_ROLES = ("clerk", "branch_manager", "directorate_admin")
DEV_TTL_SECONDS = 8 * 3600
CITIZEN_TTL_SECONDS = 3600
CITIZEN_LANDING = "/my"


class SignInFailed(Exception):
    """The issuer's answer could not be used; `reason` is a short code for the page."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- the session -----------------------------------------------------------------------------------------

def session_token(request) -> str | None:
    """The signed-in person's access token (from the `session` cookie), or None. Not verified: the API verifies
    every call; use `session_principal` to know who it is."""
    token = (request.cookies.get(SESSION_COOKIE) or "").strip()
    return token or None


def session_principal(request, config: dict) -> Principal | None:
    """Who is signed in, verified (signature, issuer, audience, expiry); None without a valid session."""
    token = session_token(request)
    if not token:
        return None
    try:
        return verifier_for(config).verify(token)
    except Unauthenticated:
        return None


def is_citizen(principal: Principal | None) -> bool:
    """A citizen whose token names them (the national eID's CPR claim), and nothing more: a staff token is never
    used for a citizen's own calls."""
    return bool(principal and principal.has("citizen") and principal.cpr)


def session_citizen(request, config: dict) -> tuple[str, Principal] | None:
    """(token, principal) of a citizen signed in on this browser (the `session` cookie), or None: nobody, an
    expired or bad token, or a member of staff. Verified once per request."""
    if "mawaeed.citizen" not in request.environ:
        token = session_token(request)
        principal = session_principal(request, config) if token else None
        request.environ["mawaeed.citizen"] = (token, principal) if is_citizen(principal) else None
    return request.environ["mawaeed.citizen"]


def masked_cpr(cpr: str | None) -> str:
    """A CPR as a page may show it to its owner: all but the last three digits hidden (••••••345)."""
    cpr = cpr or ""
    return "\u2022" * max(0, len(cpr) - 3) + cpr[-3:]


def secure_cookies(config: dict) -> bool:
    return (config.get("MAWAEED_PUBLIC_URL") or "").lower().startswith("https://")


def keep_session(response, token: str, config: dict):
    """`response` with the session cookie set to `token`, kept until the token expires."""
    try:
        expires = int(jwt.decode(token, options={"verify_signature": False}).get("exp", 0))
    except jwt.PyJWTError:
        expires = 0
    max_age = max(60, min(expires - int(time.time()), 24 * 3600)) if expires else 3600
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        secure=secure_cookies(config), samesite="Lax")
    return response


def drop_session(response, config: dict):
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=secure_cookies(config), samesite="Lax")
    return response


def safe_next(value: str | None, default: str = "/") -> str:
    """Where to go after signing in: a path on this site only (never another host, never a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value


def signin_url(request) -> str:
    """/signin with the page the person asked for as `next`."""
    wanted = request.full_path.rstrip("?") if request.query_string else request.path
    return f"/signin?next={quote(wanted, safe='')}"


def landing(principal: Principal) -> str:
    """Where a signed-in person goes when no page was asked for: their counter or their branch's figures; a
    citizen, their bookings."""
    if is_citizen(principal):
        return CITIZEN_LANDING
    branches = sorted(principal.branches)
    if principal.has("branch_manager") and branches:
        return f"/manage/{quote(branches[0])}"
    if principal.has("clerk") and branches:
        counter = f"?counter={quote(principal.counter)}" if principal.counter else ""
        return f"/counter/{quote(branches[0])}{counter}"
    return "/"


# -- OpenID Connect: authorization code with PKCE --------------------------------------------------------

_discovered: dict = {}


def discovery(issuer: str, timeout: float = 10) -> dict:
    """The issuer's discovery document (kept for the process once read)."""
    issuer = issuer.rstrip("/")
    if issuer not in _discovered:
        try:
            with urlopen(f"{issuer}/.well-known/openid-configuration", timeout=timeout) as answer:
                document = json.load(answer)
        except (URLError, OSError, ValueError):
            raise SignInFailed("issuer_unreachable") from None
        if not document.get("authorization_endpoint") or not document.get("token_endpoint"):
            raise SignInFailed("issuer_unusable")
        _discovered[issuer] = document
    return _discovered[issuer]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def code_challenge(verifier: str) -> str:
    """S256: the verifier's SHA-256, base64url without padding (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def redirect_uri(config: dict) -> str:
    return f"{config['MAWAEED_PUBLIC_URL'].rstrip('/')}/signin/callback"


def start(config: dict, next_page: str):
    """The redirect to the issuer, with the flow's state and verifier kept in a short-lived cookie."""
    endpoint = discovery(config["MAWAEED_OIDC_ISSUER"])["authorization_endpoint"]
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    query = urlencode({"response_type": "code", "client_id": config.get("MAWAEED_OIDC_WEB_CLIENT_ID") or "mawaeed-web",
                       "redirect_uri": redirect_uri(config), "scope": "openid", "state": state,
                       "code_challenge": code_challenge(verifier), "code_challenge_method": "S256"})
    response = redirect(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", 303)
    flow = _b64url(json.dumps({"state": state, "verifier": verifier, "next": next_page}).encode())
    response.set_cookie(FLOW_COOKIE, flow, max_age=FLOW_SECONDS, path="/signin", httponly=True,
                        secure=secure_cookies(config), samesite="Lax")
    return response


def _flow(request) -> dict | None:
    raw = request.cookies.get(FLOW_COOKIE) or ""
    try:
        flow = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return flow if isinstance(flow, dict) and flow.get("state") and flow.get("verifier") else None
    except (ValueError, TypeError):
        return None


def finish(request, config: dict) -> tuple[str, Principal, str]:
    """The callback: (access token, who it is, where to go next); SignInFailed when anything does not match."""
    flow = _flow(request)
    if request.args.get("error"):
        raise SignInFailed("refused")
    code, state = request.args.get("code"), request.args.get("state") or ""
    if flow is None or not code or not secrets.compare_digest(state.encode(), flow["state"].encode()):
        raise SignInFailed("state")
    endpoint = discovery(config["MAWAEED_OIDC_ISSUER"])["token_endpoint"]
    form = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(config),
                      "client_id": config.get("MAWAEED_OIDC_WEB_CLIENT_ID") or "mawaeed-web",
                      "code_verifier": flow["verifier"]}).encode()
    try:
        with urlopen(Request(endpoint, data=form, method="POST", headers={
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}),
                timeout=10) as answer:
            token = json.load(answer).get("access_token")
    except HTTPError:
        raise SignInFailed("exchange") from None
    except (URLError, OSError, ValueError):
        raise SignInFailed("issuer_unreachable") from None
    if not token:
        raise SignInFailed("exchange")
    try:
        principal = verifier_for(config).verify(token)
    except Unauthenticated:
        raise SignInFailed("token") from None
    return token, principal, safe_next(flow.get("next"), landing(principal))


def forget_flow(response, config: dict):
    response.delete_cookie(FLOW_COOKIE, path="/signin", httponly=True, secure=secure_cookies(config), samesite="Lax")
    return response


# -- the development issuer -------------------------------------------------------------------------------

def development_available(config: dict) -> bool:
    """The development sign-in: only when the suite is its own issuer (never with MAWAEED_OIDC_ISSUER set)."""
    return not config.get("MAWAEED_OIDC_ISSUER")


def development_token(config: dict, role: str, branch: dict, counter: str | None) -> str:
    """A token signed by the embedded development issuer for a clerk or manager of `branch`, or an admin of its
    directorate."""
    if not development_available(config):
        raise RuntimeError("the development sign-in is off when MAWAEED_OIDC_ISSUER is set")
    if role not in DEV_ROLES:
        raise ValueError(role)
    issuer = development_issuer(config)
    if role == "directorate_admin":
        return issuer.issue(role, directorates=[branch["directorate"]], counter=counter or None,
                            ttl_seconds=DEV_TTL_SECONDS, subject=f"dev-{role}-{secrets.token_hex(4)}")
    return issuer.issue(role, branches=[branch["id"]], counter=counter or None, ttl_seconds=DEV_TTL_SECONDS,
                        subject=f"dev-{role}-{secrets.token_hex(4)}")


def valid_cpr(cpr: str) -> bool:
    """9 digits, the first four the year and month of birth (as the API checks it)."""
    return bool(CPR_PATTERN.match(cpr or ""))


def development_citizen_token(config: dict, cpr: str, name: str | None = None) -> str:
    """A citizen's token signed by the embedded development issuer, as the national eID would give it: role
    `citizen`, the CPR in its `cpr` claim, the name if given. The subject never contains the CPR."""
    if not development_available(config):
        raise RuntimeError("the development sign-in is off when MAWAEED_OIDC_ISSUER is set")
    if not valid_cpr(cpr):
        raise ValueError("not a CPR number")
    return development_issuer(config).issue("citizen", cpr=cpr, name=(name or "").strip() or None,
                                            ttl_seconds=CITIZEN_TTL_SECONDS,
                                            subject=f"dev-citizen-{secrets.token_hex(4)}")
