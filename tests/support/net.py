"""Loopback networking for tests: a free port, and a WSGI app served on one."""
import socket

import eventlet
from eventlet import wsgi


def free_port() -> int:
    """A port nothing listens on right now, for a server about to start (or for one that never answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports, for servers about to start together: each held open until all are chosen,
    since the system may give a port back again once it is closed (and servers that bind with SO_REUSEPORT, as
    eventlet's do, would then share one port, each answering part of the other's requests)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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
