"""The gateway of the distributed mode, served as `mawaeed gateway` serves it, in front of stand-ins for the
services: real HTTP servers on loopback ports that route by their service's own @api declarations (404 and 405
as nameko answers them) and otherwise say who answered and what they were asked."""
import re

import pytest
import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request

from services.cli import SERVICES, service_classes
from services.gateway import Gateway
from shared.web import MAX_BODY_BYTES, api_routes, json_response

from tests.support.net import WsgiServer, free_port

CLASSES = dict(zip(SERVICES, service_classes(SERVICES)))
DECLARED = [(name, endpoint.method, endpoint.url) for name, cls in CLASSES.items() for endpoint in api_routes(cls)]


class StandIn:
    def __init__(self, name: str, health: int = 200):
        self.name, self.health, self.asked = name, health, []
        self.routes = Map([endpoint.get_url_rule() for endpoint in api_routes(CLASSES[name])])
        self.server = WsgiServer(self.app)

    def app(self, environ, start_response):
        request = Request(environ)
        if request.path in ("/health", "/health/ready"):
            return json_response({"services": {self.name: "ok" if self.health == 200 else "failing: Error"}},
                                 self.health)(environ, start_response)
        self.asked.append((request.method, request.full_path.rstrip("?"), request.get_data(as_text=True)))
        if request.path != "/api/v1/events":  # the feed is every service's own, outside its @api routes
            try:
                self.routes.bind_to_environ(environ).match()
            except HTTPException as exc:
                return exc(environ, start_response)
        return json_response({"service": self.name})(environ, start_response)


@pytest.fixture
def stand_ins():
    services = {name: StandIn(name) for name in SERVICES}
    yield services
    for service in services.values():
        service.server.stop()


@pytest.fixture
def start_gateway():
    """start_gateway(upstreams) -> the base URL of a gateway in front of them."""
    servers = []

    def start(upstreams: dict[str, str]) -> str:
        servers.append(WsgiServer(Gateway(upstreams)))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(stand_ins, start_gateway):
    return start_gateway({name: service.server.url for name, service in stand_ins.items()})


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["message_ar"]


@pytest.mark.parametrize("owner, method, url", DECLARED, ids=[f"{m} {u}" for _, m, u in DECLARED])
def test_every_declared_route_reaches_the_service_that_declared_it(gateway, stand_ins, owner, method, url):
    path = re.sub(r"<\w+>", "K7MX-9QRD", url) + "?cpr=900112345"
    response = requests.request(method, gateway + path, data='{"cpr": "900112345"}', timeout=5)
    assert response.status_code == 200 and response.json() == {"service": owner}
    assert stand_ins[owner].asked == [(method, path, '{"cpr": "900112345"}')]
    assert not [name for name, service in stand_ins.items() if service.asked and name != owner]


@pytest.mark.parametrize("method, path, owner", [
    ("GET", "/api/v1/branches?directorate=npra", "availability"),
    ("GET", "/api/v1/branches/npra-isa-town/queue", "queue"),
    ("POST", "/api/v1/branches/npra-isa-town/counters/5/call-next", "queue"),
    ("POST", "/api/v1/bookings/K7MX-9QRD/reschedule", "booking"),
    ("GET", "/feedback/token", "web"),
    ("GET", "/api/v1/notifications?reference=K7MX-9QRD&cpr=900112345", "notifications"),
])
def test_the_documented_paths_reach_their_services(gateway, method, path, owner):
    assert requests.request(method, gateway + path, timeout=5).json() == {"service": owner}


@pytest.mark.parametrize("method, path, owner", [
    ("GET", "/api/v1/bookings", "booking"),
    ("GET", "/api/v1/bookings/K7MX-9QRD/cancel", "booking"),
    ("DELETE", "/api/v1/branches", "availability"),
    ("GET", "/api/v1/tickets/42/served", "queue"),
])
def test_a_declared_path_asked_with_another_method_is_answered_405_by_its_service(
        gateway, stand_ins, method, path, owner):
    assert requests.request(method, gateway + path, timeout=5).status_code == 405
    assert stand_ins[owner].asked == [(method, path, "")]


@pytest.mark.parametrize("name", SERVICES)
def test_the_events_feed_goes_to_the_service_its_parameter_names(gateway, stand_ins, name):
    path = f"/api/v1/events?service={name}&after=3&limit=10"
    assert requests.get(gateway + path, timeout=5).json() == {"service": name}
    assert stand_ins[name].asked == [("GET", path, "")]


@pytest.mark.parametrize("query", ["", "?service=billing", "?after=3"])
def test_the_events_feed_of_no_known_service_is_not_found(gateway, stand_ins, query):
    assert_error(requests.get(f"{gateway}/api/v1/events{query}", timeout=5), 404, "UNKNOWN_SERVICE")
    assert not any(service.asked for service in stand_ins.values())


@pytest.mark.parametrize("path", ["/nothing-here", "/api/v1/nothing", "/api/v1/directorates/",
                                  "/api/v1//bookings", "/api/v1/bookings/K7MX-9QRD/cancel/now"])
def test_a_path_no_service_declares_is_not_found_by_the_gateway(gateway, stand_ins, path):
    assert_error(requests.post(gateway + path, timeout=5), 404, "NOT_FOUND")
    assert not any(service.asked for service in stand_ins.values())


def test_a_service_the_gateway_is_not_in_front_of_is_not_found(stand_ins, start_gateway):
    gateway = start_gateway({"booking": stand_ins["booking"].server.url})
    assert_error(requests.get(f"{gateway}/api/v1/directorates", timeout=5), 404, "NOT_FOUND")
    assert_error(requests.get(f"{gateway}/api/v1/events?service=queue", timeout=5), 404, "UNKNOWN_SERVICE")


def test_a_body_over_the_limit_is_refused_before_any_service_sees_it(gateway, stand_ins):
    assert_error(requests.post(f"{gateway}/api/v1/bookings", data=b"x" * (MAX_BODY_BYTES + 1), timeout=5),
                 413, "BODY_TOO_LARGE")
    assert stand_ins["booking"].asked == []
    assert requests.post(f"{gateway}/api/v1/bookings", data=b"x" * MAX_BODY_BYTES, timeout=5).status_code == 200
    assert len(stand_ins["booking"].asked[0][2]) == MAX_BODY_BYTES


def test_a_service_that_does_not_answer_is_503(stand_ins, start_gateway):
    gateway = start_gateway({"booking": f"http://127.0.0.1:{free_port()}"})
    response = requests.get(f"{gateway}/api/v1/bookings/K7MX-9QRD?cpr=900112345", timeout=10)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "booking" in response.json()["error"]["message"]
    assert response.headers["Retry-After"].isdigit()


def test_health_is_ok_when_every_service_is(gateway):
    response = requests.get(f"{gateway}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "services": {name: "ok" for name in SERVICES}}


def test_health_names_each_service_that_fails_or_does_not_answer(stand_ins, start_gateway):
    stand_ins["booking"].health = 503
    gateway = start_gateway({**{name: service.server.url for name, service in stand_ins.items()},
                             "queue": f"http://127.0.0.1:{free_port()}"})
    response = requests.get(f"{gateway}/health", timeout=10)
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "services": {
        "availability": "ok", "booking": "failing", "queue": "not answering", "notifications": "ok", "web": "ok",
        "insights": "ok"}}


def test_a_live_stream_is_relayed_as_it_comes(start_gateway):
    """A display's server-sent events pass through the gateway chunk by chunk, not once the answer has ended
    (it never ends): the first event arrives while the upstream still holds the stream open."""
    import threading

    from eventlet import wsgi
    import eventlet

    release = threading.Event()

    def events(environ, start_response):
        environ["eventlet.minimum_write_chunk_size"] = 0  # as the suite's own stream does: each event at once
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def stream():
            yield b"data: first\n\n"
            release.wait(10)
            yield b"data: second\n\n"
        return stream()

    listener = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(wsgi.server, listener, events, log_output=False)
    upstream = f"http://127.0.0.1:{listener.getsockname()[1]}"
    gateway = start_gateway({name: upstream for name in SERVICES})
    with requests.get(f"{gateway}/api/v1/branches/npra-isa-town/board", headers={"Accept": "text/event-stream"},
                      stream=True, timeout=10) as answer:
        lines = answer.iter_lines()
        assert next(lines) == b"data: first"   # before the upstream has finished
        release.set()
        assert [line for line in lines if line] == [b"data: second"]
    listener.close()


def test_a_chunked_body_is_passed_on_whole(gateway, stand_ins):
    body = b'{"cpr": "900112345"}'
    response = requests.post(f"{gateway}/api/v1/bookings/K7MX-9QRD/cancel", data=iter([body[:5], body[5:]]),
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.json() == {"service": "booking"}
    assert stand_ins["booking"].asked == [("POST", "/api/v1/bookings/K7MX-9QRD/cancel", body.decode())]


def test_a_chunked_body_over_the_limit_is_refused(gateway, stand_ins):
    chunks = iter([b"x" * 4096] * (MAX_BODY_BYTES // 4096 + 2))
    assert_error(requests.post(f"{gateway}/api/v1/bookings", data=chunks, timeout=5), 413, "BODY_TOO_LARGE")
    assert not any(service.asked for service in stand_ins.values())


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/health/live", "/metrics"])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "POST"])
def test_the_gateways_own_paths_answer_get_only(gateway, path, method):
    response = requests.request(method, gateway + path, timeout=5)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "GET, HEAD"


def test_liveness_is_the_gateways_own_and_readiness_the_suites(stand_ins, start_gateway):
    gateway = start_gateway({"booking": f"http://127.0.0.1:{free_port()}"})
    assert requests.get(f"{gateway}/health/live", timeout=5).status_code == 200
    assert requests.get(f"{gateway}/health/ready", timeout=10).status_code == 503


def test_the_gateway_counts_its_requests_by_upstream_route_and_status(gateway):
    requests.get(f"{gateway}/api/v1/directorates", timeout=5)
    requests.get(f"{gateway}/nothing/{'x' * 40}", timeout=5)
    text = requests.get(f"{gateway}/metrics", timeout=5).text
    assert re.search(r'mawaeed_gateway_request_seconds_count\{route="/api/v1/directorates",status="200",'
                     r'upstream="availability"\} [1-9]', text)
    assert re.search(r'mawaeed_gateway_request_seconds_count\{route="unmatched",status="404",upstream="gateway"\}',
                     text)
    assert "x" * 40 not in text


# -- replicas of one service ---------------------------------------------------------------------------------

def test_requests_are_spread_over_the_replicas_of_a_service(stand_ins, start_gateway):
    second = StandIn("booking")
    try:
        gateway = start_gateway({"booking": f"{stand_ins['booking'].server.url},{second.server.url}"})
        for n in range(6):
            assert requests.get(f"{gateway}/api/v1/bookings/K7MX-{n:04d}", timeout=5).status_code == 200
        assert len(stand_ins["booking"].asked) == 3 and len(second.asked) == 3
    finally:
        second.server.stop()


def test_a_replica_that_refuses_the_connection_is_passed_over_and_nothing_is_sent_twice(stand_ins, start_gateway):
    down = f"http://127.0.0.1:{free_port()}"
    gateway = start_gateway({"booking": [down, stand_ins["booking"].server.url]})
    for n in range(4):
        response = requests.post(f"{gateway}/api/v1/bookings", data=f'{{"n": {n}}}', timeout=10)
        assert response.status_code == 200 and response.json() == {"service": "booking"}
    assert [body for _, _, body in stand_ins["booking"].asked] == [f'{{"n": {n}}}' for n in range(4)]


def test_when_every_replica_refuses_the_answer_is_503(start_gateway):
    gateway = start_gateway({"booking": [f"http://127.0.0.1:{port}" for port in (free_port(), free_port())]})
    assert_error(requests.get(f"{gateway}/api/v1/bookings/K7MX-9QRD", timeout=10), 503, "SERVICE_UNAVAILABLE")


def test_a_busy_replica_gets_the_next_request_after_an_idle_one():
    from services.gateway import Replicas
    replicas = Replicas(["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"])
    replicas.replicas[0].in_flight = 2
    replicas.replicas[1].in_flight = 1
    assert [r.url for r in replicas.in_order()][0] == "http://127.0.0.1:3"
    replicas.replicas[2].in_flight = 5
    assert [r.url for r in replicas.in_order()] == ["http://127.0.0.1:2", "http://127.0.0.1:1", "http://127.0.0.1:3"]


def test_readiness_needs_every_replica(stand_ins, start_gateway):
    gateway = start_gateway({"booking": [stand_ins["booking"].server.url, f"http://127.0.0.1:{free_port()}"]})
    response = requests.get(f"{gateway}/health/ready", timeout=10)
    assert response.status_code == 503 and response.json()["services"] == {"booking": "not answering"}


def test_the_upstream_setting_takes_several_urls_and_an_empty_one_leaves_a_service_out():
    from shared.config import gateway_upstreams
    upstreams = gateway_upstreams({"BOOKING_URL": "http://127.0.0.1:8002, http://127.0.0.1:8012", "WEB_URL": ""})
    assert upstreams["booking"] == ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]
    assert upstreams["queue"] == ["http://127.0.0.1:8003"] and "web" not in upstreams


# -- what is resent, and where ---------------------------------------------------------------------------------

class RawReplica:
    """A replica as a bare socket server, for the failures a real one can have: on each connection it reads
    requests one by one, answers the first `answered` of them (200, kept alive) and then closes the connection
    without answering the next; `die` closes its listening socket too once it has read a request it does not
    answer, as a replica that crashed does. `seen` is every request it read whole, in order."""

    def __init__(self, answered: int = 0, die: bool = False, close_idle: bool = False):
        import eventlet
        self.answered, self.die, self.close_idle = answered, die, close_idle
        self.seen, self.connections = [], 0
        self.idle_closed = eventlet.event.Event()
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = eventlet.spawn(self.accept)

    def accept(self):
        import eventlet
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            eventlet.spawn(self.serve, sock)

    def serve(self, sock):
        reader = sock.makefile("rb")
        try:
            for n in range(self.answered + 1):
                request_line = reader.readline()
                if not request_line:
                    return
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    length = int(value) if name.lower() == "content-length" else length
                method, target = request_line.decode().split()[:2]
                self.seen.append((method, target, reader.read(length).decode()))
                if n == self.answered:  # not answered: the connection (and, dying, the replica) goes away
                    if self.die:
                        self.listener.close()
                    return
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                if self.close_idle and n + 1 == self.answered:
                    reader.close()
                    sock.close()
                    if not self.idle_closed.ready():
                        self.idle_closed.send()
                    return
        finally:
            reader.close()
            sock.close()

    def stop(self):
        self.thread.kill()
        self.listener.close()


@pytest.fixture
def raw_replica():
    """raw_replica(**how) -> a RawReplica, stopped after the test."""
    replicas = []

    def make(**how) -> RawReplica:
        replicas.append(RawReplica(**how))
        return replicas[-1]

    yield make
    for replica in replicas:
        replica.stop()


@pytest.mark.parametrize("die", [False, True], ids=["stays up", "dies"])
def test_a_post_the_replica_read_but_did_not_answer_is_503_and_sent_nowhere_again(
        stand_ins, start_gateway, raw_replica, die):
    """It may have taken effect (a booking made, a ticket called): sending it again, to the same replica or,
    the replica being gone, to the next one, could do it twice."""
    silent = raw_replica(die=die)
    gateway = start_gateway({"booking": [silent.url, stand_ins["booking"].server.url]})
    response = requests.post(f"{gateway}/api/v1/bookings", data='{"n": 1}', timeout=10)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"].isdigit()
    assert silent.seen == [("POST", "/api/v1/bookings", '{"n": 1}')]
    assert stand_ins["booking"].asked == []


def test_a_post_on_a_kept_alive_connection_closed_before_an_answer_is_not_resent(start_gateway, raw_replica):
    replica = raw_replica(answered=1)
    gateway = start_gateway({"booking": replica.url})
    assert requests.post(f"{gateway}/api/v1/bookings", data='{"n": 1}', timeout=10).status_code == 200
    assert_error(requests.post(f"{gateway}/api/v1/bookings", data='{"n": 2}', timeout=10),
                 503, "SERVICE_UNAVAILABLE")
    assert [body for _, _, body in replica.seen] == ['{"n": 1}', '{"n": 2}']
    assert replica.connections == 1


def test_a_get_on_a_kept_alive_connection_closed_before_an_answer_is_asked_again_once(start_gateway, raw_replica):
    replica = raw_replica(answered=1)
    gateway = start_gateway({"booking": replica.url})
    for n in (1, 2):
        assert requests.get(f"{gateway}/api/v1/bookings/K7MX-000{n}", timeout=10).status_code == 200
    assert [target for _, target, _ in replica.seen] == [
        "/api/v1/bookings/K7MX-0001", "/api/v1/bookings/K7MX-0002", "/api/v1/bookings/K7MX-0002"]
    assert replica.connections == 2


def test_a_post_after_the_replica_closed_an_idle_kept_alive_connection_goes_on_a_fresh_one(
        start_gateway, raw_replica):
    """Seen closed before anything is sent on it. (A call-next has no body: its request is one write, which the
    closed connection takes without complaint; only the missing answer would tell, and then too late to resend.)"""
    replica = raw_replica(answered=1, close_idle=True)
    gateway = start_gateway({"queue": replica.url})
    call_next = "/api/v1/branches/npra-isa-town/counters/5/call-next"
    assert requests.post(gateway + call_next, timeout=10).status_code == 200
    replica.idle_closed.wait()
    assert requests.post(gateway + call_next, timeout=10).status_code == 200
    assert replica.seen == [("POST", call_next, ""), ("POST", call_next, "")]
    assert replica.connections == 2
