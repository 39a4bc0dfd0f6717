"""A real OpenID Connect issuer for tests: its discovery document and key set served over HTTP on a loopback
port, RSA keys it can rotate, tokens signed as an identity provider signs them (or deliberately not), and a token
endpoint that grants client credentials (how the suite's services get their own token) and, for the pages' sign-in,
the authorization code flow with PKCE (S256): `sign_in_as(role, **claims)` says who signs in at its authorization
endpoint next (as a person would at the identity provider's login page); nobody set: the person refuses."""
import base64
import hashlib
import json
import threading
from urllib.parse import parse_qs, urlencode, urlsplit
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class TestIssuer:
    __test__ = False  # a helper, not a test class

    def __init__(self, audience: str = "mawaeed", clients: dict | None = None):
        """`clients`: client id -> (secret, role, scopes) granted by the token endpoint."""
        self.audience = audience
        self.clients = clients or {}
        self.keys = {}            # kid -> private key, the ones the key set publishes
        self.jwks_fetches = 0
        self.person = None        # (role, claims) of who signs in at the authorization endpoint next
        self.codes = {}           # code -> (code challenge, redirect uri, client id, role, claims)
        self.exchanges = []       # the forms posted to the token endpoint for a code
        self.current = self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks", "token_endpoint": f"{issuer.url}/token",
                            "authorization_endpoint": f"{issuer.url}/authorize"}
                elif self.path.startswith("/authorize?"):
                    self.send_response(302)
                    self.send_header("Location", issuer.authorize(self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [dict(RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), kid=kid, alg="RS256",
                                          use="sig") for kid, k in issuer.keys.items()]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                if self.path == "/token" and form.get("grant_type") == ["authorization_code"]:
                    token = issuer.exchange({k: v[0] for k, v in form.items()})
                    if token is None:
                        self.send_error(400)
                        return
                    data = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 300}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                client = issuer.clients.get(form.get("client_id", [""])[0])
                if self.path != "/token" or form.get("grant_type") != ["client_credentials"] or client is None \
                        or form.get("client_secret", [""])[0] != client[0]:
                    self.send_error(401)
                    return
                token = issuer.token(client[1], scope=" ".join(client[2]), sub=form["client_id"][0])
                data = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign_in_as(self, role: str | None, **claims) -> None:
        """Who signs in at the authorization endpoint from now on (None: the person refuses)."""
        self.person = (role, claims) if role else None

    def authorize(self, path: str) -> str:
        """The authorization endpoint: back to the client's redirect URI with a one-time code (or an error)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        back = query.get("redirect_uri", "")
        if self.person is None or query.get("response_type") != "code" \
                or query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return f"{back}?{urlencode({'error': 'access_denied', 'state': query.get('state', '')})}"
        code = uuid.uuid4().hex
        self.codes[code] = (query["code_challenge"], back, query.get("client_id"), *self.person)
        return f"{back}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def exchange(self, form: dict) -> str | None:
        """The token endpoint for a code: the token of who signed in, if the verifier, URI and client match."""
        self.exchanges.append(form)
        granted = self.codes.pop(form.get("code"), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if granted is None or challenge != granted[0] or form.get("redirect_uri") != granted[1] \
                or form.get("client_id") != granted[2]:
            return None
        return self.token(granted[3], **granted[4])

    def rotate(self) -> str:
        """A new signing key, published beside the old ones; tokens are signed with it from now on."""
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.current = kid
        return kid

    def claims(self, role: str | None = "clerk", **extra) -> dict:
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.audience, "sub": f"{role or 'nobody'}-{uuid.uuid4().hex[:6]}",
                  "iat": now, "nbf": now, "exp": now + 300}
        if role:
            claims["roles"] = [role]
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, role: str | None = "clerk", kid: str | None = None, key=None, algorithm: str = "RS256",
              **extra) -> str:
        kid = kid or self.current
        return jwt.encode(self.claims(role, **extra), key or self.keys[kid], algorithm=algorithm,
                          headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
