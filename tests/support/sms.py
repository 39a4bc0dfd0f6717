"""A local stand-in for an SMS gateway: an HTTP server that records what it is asked to send."""
import json

from tests.support.net import WsgiServer


class SmsGateway:
    def __init__(self, key: str = "test-key", fail: bool = False):
        self.key, self.fail, self.received = key, fail, []
        self.server = WsgiServer(self.app)
        self.url = f"{self.server.url}/sms"

    def app(self, environ, start_response):
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.key}":
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"no"]
        if self.fail:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"down"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.received.append(json.loads(environ["wsgi.input"].read(length)))
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [b'{"accepted": true}']

    def stop(self) -> None:
        self.server.stop()
