"""Who is calling, and what they may do where.

Every caller other than the public proves who it is with an OpenID Connect bearer token (a JWT), verified here,
locally, against the issuer's published keys: the signature (RS256 or ES256 only: `alg: none`, HS256 and any
other algorithm are refused, so a public key can never be used as an HMAC secret), the issuer, the audience,
the expiry and not-before times with at most 60 s of clock skew. A token signed with a key id we have not seen
makes us fetch the issuer's key set again, once (key rotation).

Claims are read from a plain layout (`roles`, `branches`, `directorates`, `scope`) and from Keycloak's
(`realm_access.roles`, `resource_access.<client>.roles`, attributes mapped to claims). A role is worth something
only where the token places it: a clerk at its `branches`, a directorate admin at every branch of its
`directorates`, a kiosk or a display at the one branch it is bound to.
"""
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import jwt

from shared.errors import DomainError

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 60
ROLES = ("citizen", "kiosk", "display", "clerk", "branch_manager", "directorate_admin", "analyst", "subscriber",
         "auditor", "system_admin")
STAFF = ("clerk", "branch_manager", "directorate_admin")
DEVICES = ("kiosk", "display")


class Unauthenticated(DomainError):
    status, code = 401, "UNAUTHENTICATED"


class Forbidden(DomainError):
    status, code = 403, "FORBIDDEN"


def unauthenticated(reason: str = "Sign in: this needs a valid bearer token.") -> Unauthenticated:
    return Unauthenticated(reason, message_ar="يلزم تسجيل الدخول برمز دخول صالح.")


def forbidden(reason: str) -> Forbidden:
    return Forbidden(reason, message_ar="ليست لديك صلاحية لهذا الإجراء في هذا المكان.")


def _listed(value) -> frozenset:
    """A claim that may be a list, a comma- or space-separated string, or missing."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(v for v in value.replace(",", " ").split() if v)
    return frozenset(str(v) for v in value if v)


@dataclass(frozen=True)
class Principal:
    """The verified caller. The public is `PUBLIC`: no subject, no role."""
    subject: str | None = None
    roles: frozenset = frozenset()
    branches: frozenset = frozenset()
    directorates: frozenset = frozenset()
    scopes: frozenset = frozenset()
    cpr: str | None = None
    name: str | None = None
    counter: str | None = None
    claims: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def authenticated(self) -> bool:
        return self.subject is not None

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def role_for(self, roles) -> str | None:
        """The first of `roles` this caller holds (what its actor record names)."""
        return next((r for r in roles if r in self.roles), None)

    def may_act_at(self, roles, branch: str, directorate: str | None) -> bool:
        """Holds one of `roles` at `branch`: a branch-scoped role there, or a directorate admin of its directorate."""
        if "directorate_admin" in roles and "directorate_admin" in self.roles and directorate in self.directorates:
            return True
        return any(r in self.roles for r in roles if r != "directorate_admin") and branch in self.branches

    def actor(self, roles, branch: str | None = None) -> dict:
        """Who did it, as events record it: never the token, never a CPR."""
        actor = {"subject": self.subject, "role": self.role_for(roles) or sorted(self.roles)[0]}
        if branch:
            actor["branch"] = branch
        if self.counter:
            actor["counter"] = self.counter
        return actor


PUBLIC = Principal()


@dataclass(frozen=True)
class Caller:
    """One request's verified caller, the roles its route lets in (None: a public route) and the client's
    address (shared/ratelimits.py)."""
    principal: Principal = PUBLIC
    allow: tuple | None = None
    address: str | None = None

    def at(self, branch: str, directorate: str | None) -> dict | None:
        """The actor of an action at `branch`, for the event's metadata; 403 when the caller's roles do not
        reach that branch. None on a public route."""
        if not self.allow:
            return None
        if not self.principal.may_act_at(self.allow, branch, directorate):
            raise forbidden(f"Your roles do not reach the branch {branch!r}.")
        return self.principal.actor(self.allow, branch)

    @property
    def actor(self) -> dict | None:
        """The actor of an action that is not at a branch (an erasure, say)."""
        return self.principal.actor(self.allow) if self.allow and self.principal.authenticated else None

    @property
    def limited_by_address(self) -> bool:
        """Staff and devices share a centre's address: only the public and citizens count per address."""
        return not self.principal.has(*STAFF, *DEVICES)


def principal_from(claims: dict, audience: str, cpr_claim: str = "cpr", name_claim: str = "name") -> Principal:
    """The caller a token's verified claims describe, in the plain layout or Keycloak's."""
    roles = set(_listed(claims.get("roles")))
    roles |= _listed((claims.get("realm_access") or {}).get("roles"))
    for client in {audience, claims.get("azp")} - {None}:
        roles |= _listed(((claims.get("resource_access") or {}).get(client) or {}).get("roles"))
    scopes = _listed(claims.get("scope")) | _listed(claims.get("scp"))
    cpr = claims.get(cpr_claim)
    return Principal(
        subject=str(claims["sub"]), roles=frozenset(r for r in roles if r in ROLES),
        branches=_listed(claims.get("branches") or claims.get("branch")),
        directorates=_listed(claims.get("directorates") or claims.get("directorate")),
        scopes=scopes, cpr=str(cpr) if cpr else None, name=claims.get(name_claim),
        counter=str(claims["counter"]) if claims.get("counter") else None, claims=claims)


class IssuerKeys:
    """The signing keys an OpenID Connect issuer publishes, found through its discovery document and fetched
    lazily (the issuer may start after us). PyJWT's client refetches the key set once for an unknown key id, at
    most once per `cooldown` seconds, so a flood of made-up key ids cannot turn us against the issuer."""

    def __init__(self, issuer: str, timeout: float = 10, cooldown: float = 10):
        self.issuer, self.timeout, self.cooldown = issuer.rstrip("/"), timeout, cooldown
        self._client = None
        self._lock = threading.Lock()

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                with urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout) as answer:
                    jwks_uri = json.load(answer)["jwks_uri"]
                self._client = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600, timeout=self.timeout,
                                               cooldown_duration=self.cooldown)
            return self._client

    def signing_key(self, kid: str):
        return self._jwks_client().get_signing_key(kid).key


class Verifier:
    """Verifies bearer tokens of one issuer and audience; `keys.signing_key(kid)` gives the public key."""

    def __init__(self, issuer: str, audience: str, keys, cpr_claim: str = "cpr", name_claim: str = "name"):
        self.issuer, self.audience, self.keys = issuer.rstrip("/"), audience, keys
        self.cpr_claim, self.name_claim = cpr_claim, name_claim

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
            if not header.get("kid"):
                raise jwt.InvalidTokenError("the token names no key")
            claims = jwt.decode(token, self.keys.signing_key(header["kid"]), algorithms=ALGORITHMS,
                                audience=self.audience, issuer=self.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise unauthenticated(f"The bearer token is not valid: {_reason(exc)}.") from None
        except OSError:  # the issuer's keys cannot be fetched: we cannot tell, so we do not let it in
            raise unauthenticated("The bearer token cannot be checked now (the issuer's keys are out of reach).") \
                from None
        return principal_from(claims, self.audience, self.cpr_claim, self.name_claim)

    def principal(self, authorization: str | None) -> Principal:
        """The caller of a request by its Authorization header: PUBLIC without one."""
        if not authorization:
            return PUBLIC
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Send the token as `Authorization: Bearer <token>`.")
        return self.verify(token.strip())


def _reason(exc: Exception) -> str:
    """Why a token was refused, in words a caller can act on (never the token itself)."""
    return {jwt.ExpiredSignatureError: "it has expired", jwt.ImmatureSignatureError: "it is not valid yet",
            jwt.InvalidAudienceError: "it is for another audience", jwt.InvalidIssuerError: "another issuer made it",
            jwt.InvalidSignatureError: "its signature does not match",
            jwt.InvalidAlgorithmError: "its algorithm is not accepted",
            jwt.PyJWKClientError: "it was signed with a key the issuer does not publish",
            jwt.MissingRequiredClaimError: "a required claim is missing"}.get(type(exc), "it cannot be read")


_per_process: dict = {}


def verifier_for(config: dict) -> Verifier:
    """The verifier of this deployment: its OpenID Connect issuer's, or (none set) the embedded development
    issuer's, whose key lives under MAWAEED_DATA_DIR. One per process and setting (it caches the keys)."""
    settings = tuple(config.get(k) for k in ("MAWAEED_OIDC_ISSUER", "MAWAEED_OIDC_AUDIENCE", "MAWAEED_OIDC_CPR_CLAIM",
                                             "MAWAEED_OIDC_NAME_CLAIM", "MAWAEED_PUBLIC_URL", "MAWAEED_DATA_DIR"))
    if settings not in _per_process:
        _per_process[settings] = _new_verifier(config)
    return _per_process[settings]


def _new_verifier(config: dict) -> Verifier:
    audience = config.get("MAWAEED_OIDC_AUDIENCE") or "mawaeed"
    claims = {"cpr_claim": config.get("MAWAEED_OIDC_CPR_CLAIM") or "cpr",
              "name_claim": config.get("MAWAEED_OIDC_NAME_CLAIM") or "name"}
    if config.get("MAWAEED_OIDC_ISSUER"):
        return Verifier(config["MAWAEED_OIDC_ISSUER"], audience, IssuerKeys(config["MAWAEED_OIDC_ISSUER"]), **claims)
    return Verifier(config["MAWAEED_PUBLIC_URL"], audience, development_issuer(config), **claims)


def development_issuer(config: dict):
    """The embedded development issuer; refused when a real issuer is configured."""
    from shared.issuer import DevelopmentIssuer
    if config.get("MAWAEED_OIDC_ISSUER"):
        raise RuntimeError("MAWAEED_OIDC_ISSUER is set: the development issuer is off; get tokens from the issuer")
    return DevelopmentIssuer(config.get("MAWAEED_DATA_DIR") or "./var", config["MAWAEED_PUBLIC_URL"],
                             config.get("MAWAEED_OIDC_AUDIENCE") or "mawaeed")


FEED_SCOPES = ("events:availability", "events:booking", "events:queue", "events:notifications", "events:personal")


def service_credentials(config: dict) -> "ServiceCredentials":
    """This process's credentials for reading the suite's feeds (one per issuer setting)."""
    key = ("credentials", config.get("MAWAEED_OIDC_ISSUER"), config.get("MAWAEED_OIDC_CLIENT_ID"),
           config.get("MAWAEED_PUBLIC_URL"), config.get("MAWAEED_DATA_DIR"))
    if key not in _per_process:
        _per_process[key] = ServiceCredentials(config)
    return _per_process[key]


class ServiceCredentials:
    """The bearer token the suite's own services show when they read each other's events feeds: from the
    issuer by the client-credentials grant (MAWAEED_OIDC_CLIENT_ID/SECRET), or signed by the development
    issuer. Kept until shortly before it expires."""

    def __init__(self, config: dict):
        self.config = config
        self._token, self._expires = None, 0.0
        self._lock = threading.Lock()

    def authorization(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - 60:
                self._token, lifetime = self._fetch()
                self._expires = time.time() + lifetime
            return f"Bearer {self._token}"

    def _fetch(self) -> tuple[str, float]:
        config = self.config
        if not config.get("MAWAEED_OIDC_ISSUER"):
            return development_issuer(config).issue("subscriber", scopes=FEED_SCOPES, ttl_seconds=3600,
                                                    subject="mawaeed-services"), 3600
        issuer = config["MAWAEED_OIDC_ISSUER"].rstrip("/")
        with urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as answer:
            endpoint = json.load(answer)["token_endpoint"]
        form = urlencode({"grant_type": "client_credentials", "client_id": config["MAWAEED_OIDC_CLIENT_ID"],
                          "client_secret": config["MAWAEED_OIDC_CLIENT_SECRET"]}).encode()
        with urlopen(Request(endpoint, data=form, method="POST"), timeout=10) as answer:
            granted = json.load(answer)
        return granted["access_token"], float(granted.get("expires_in", 300))
