"""A real OpenID Connect issuer for tests: its discovery document and key set served over HTTP on a loopback
port, RSA keys it can rotate, tokens signed as an identity provider signs them (or deliberately not), and a token
endpoint that grants client credentials (how the suite's services get their own token)."""
import json
import threading
from urllib.parse import parse_qs
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
        self.current = self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks", "token_endpoint": f"{issuer.url}/token"}
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
