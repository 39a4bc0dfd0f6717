"""The embedded mode's own OpenID Connect issuer, so that a newcomer can try every role with nothing installed.

On first start it makes an ES256 signing key under MAWAEED_DATA_DIR/issuer/ (processes starting together take
turns: the first one's key wins), publishes its discovery document and key set (served by shared/web.py at
/.well-known/), and `mawaeed token issue` signs tokens with the same key. It is a development tool: the suite
uses it only when MAWAEED_OIDC_ISSUER is not set, and a production deployment always sets it.
"""
import base64
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

KEY_FILE = "issuer/signing-key.pem"
TTL = re.compile(r"(\d+)([smhd])\Z")


def parse_ttl(text: str) -> int:
    """"8h", "30m", "900s", "2d" in seconds."""
    found = TTL.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30m, 8h or 2d")
    return int(found[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found[2]]


def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        draft = path.with_name(f".{uuid.uuid4().hex}.pem")
        draft.write_bytes(pem)
        os.chmod(draft, 0o600)
        try:
            os.link(draft, path)  # fails if another process made it first: then theirs is the key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


class DevelopmentIssuer:
    def __init__(self, data_dir: str, issuer: str, audience: str = "mawaeed"):
        self.issuer, self.audience = issuer.rstrip("/"), audience
        self.private_key = _load_or_create(Path(data_dir) / KEY_FILE)
        self.public_jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        self.kid = _thumbprint(self.public_jwk)
        self.public_jwk.update(kid=self.kid, use="sig", alg="ES256")

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["ES256"], "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "claims_supported": [
                    "sub", "roles", "branches", "directorates", "counter", "cpr", "name", "scope"]}

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    def signing_key(self, kid: str):
        if kid != self.kid:
            raise jwt.PyJWKClientError(f"no key {kid!r}")
        return self.private_key.public_key()

    def issue(self, role: str, branches=(), directorates=(), counter: str | None = None, cpr: str | None = None,
              scopes=(), ttl_seconds: int = 8 * 3600, subject: str | None = None, name: str | None = None) -> str:
        issued = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": subject or f"{role}-{uuid.uuid4().hex[:8]}",
                  "iat": issued, "nbf": issued, "exp": issued + ttl_seconds, "roles": [role],
                  "branches": list(branches), "directorates": list(directorates)}
        if scopes:
            claims["scope"] = " ".join(scopes)
        for claim, value in (("counter", counter), ("cpr", cpr), ("name", name)):
            if value:
                claims[claim] = value
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})


def _thumbprint(jwk: dict) -> str:
    """The RFC 7638 thumbprint of an EC key: its key id."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
