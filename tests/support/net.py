"""Loopback networking for tests: a free port, and a WSGI app served on one."""
import socket

import eventlet
from eventlet import wsgi


def free_port() -> int:
    """A port nothing listens on right now, for a server about to start (or for one that never answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WsgiServer:
    """`app` served on a loopback port in a green thread of this process, until stop()."""

    def __init__(self, app):
        self.socket = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = eventlet.spawn(wsgi.server, self.socket, app, log_output=False)

    def stop(self) -> None:
        self.thread.kill()
        try:
            self.socket.close()
        except OSError:
            pass
