"""What a fuzzer and a new user found at the edges of HTTP: every answer is JSON with a 4xx (never a 500, never
HTML or an empty body), in both modes (the gateway relays the services' answers unchanged)."""
import json
import re
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

HERE, PASSPORT = "npra-isa-town", "passport-renewal"


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert error["message"] and error["message_ar"]
    if code:
        assert error["code"] == code
    for messages in error.get("fields", {}).values():  # each field's errors are messages for a person
        assert messages and all(isinstance(m, str) and len(m) > 10 for m in messages), error
    return error


def slot(suite, n: int) -> str:
    """The start of the nth bookable slot of tomorrow (each test books its own)."""
    slots = requests.get(f"{suite.api}/availability", timeout=10, params={
        "branch": HERE, "service": PASSPORT, "date": "2026-12-07"}).json()["slots"]
    return [s["start"] for s in slots if s["bookable"]][n]


def booking(**changes) -> dict:
    return {"cpr": f"8901{uuid.uuid4().int % 100000:05d}", "branch": HERE, "service": PASSPORT,
            "start": "2026-12-07T07:00:00+03:00", "name": "Edge Case", "language": "en", **changes}


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1900-01-01"])
def test_a_date_out_of_range_is_invalid(suite, day):
    response = requests.get(f"{suite.api}/availability", params={"branch": HERE, "service": PASSPORT, "date": day},
                            timeout=10)
    assert "date" in assert_error(response, 422, "INVALID_INPUT")["fields"]


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+03:00", "9999-12-31T23:59:59+03:00",
                                   "1900-01-01T07:00:00+03:00"])
def test_a_booking_or_a_move_out_of_range_is_invalid(suite, start):
    assert "start" in assert_error(requests.post(f"{suite.api}/bookings", json=booking(start=start), timeout=10),
                                   422)["fields"]
    person = booking(start=slot(suite, 1))
    booked = requests.post(f"{suite.api}/bookings", json=person, timeout=10)
    assert booked.status_code == 201, booked.text
    moved = requests.post(f"{suite.api}/bookings/{booked.json()['reference']}/reschedule", timeout=10,
                          json={"cpr": person["cpr"], "start": start})
    assert "start" in assert_error(moved, 422)["fields"]


@pytest.mark.parametrize("query", ["after=9223372036854775808", "after=-1", "after=NaN", "limit=0", "limit=1001",
                                   "after=%D9%A3"])
def test_the_feed_refuses_positions_out_of_range_with_messages(suite, query):
    response = requests.get(f"{suite.api}/events?service=booking&{query}", headers=suite.reader(), timeout=10)
    assert set(assert_error(response, 422, "INVALID_INPUT")["fields"]) <= {"after", "limit"}


def test_a_body_nested_a_thousand_deep_is_malformed(suite):
    for deep in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000):
        response = requests.post(f"{suite.api}/bookings", data=deep, timeout=10,
                                 headers={"Content-Type": "application/json"})
        assert_error(response, 400, "MALFORMED_JSON")


def test_a_lone_surrogate_is_malformed(suite):
    clerk = suite.as_("clerk", branches=[HERE])
    for path, body, headers in [
            ("/feedback", '{"token": "\\ud800abcdefghijk", "score": 3}', {}),
            ("/bookings", json.dumps(booking(branch="X")).replace('"X"', '"\\ud800"'), {}),
            ("/bookings", json.dumps(booking(name="X")).replace('"X"', '"a\\ud800b"'), {}),
            (f"/branches/{HERE}/check-ins", '{"reference": "\\ud800BCDEFGH", "cpr": "900112345"}', clerk)]:
        response = requests.post(suite.api + path, data=body, timeout=10,
                                 headers={"Content-Type": "application/json", **headers})
        assert_error(response, 400, "MALFORMED_JSON")


def test_a_chunked_json_body_is_read(suite):
    body = json.dumps(booking(start=slot(suite, 2))).encode()
    response = requests.post(f"{suite.api}/bookings", data=iter([body[:10], body[10:]]), timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    too_big = iter([b" " * 4096] * 6)
    assert_error(requests.post(f"{suite.api}/bookings", data=too_big, timeout=10), 413, "BODY_TOO_LARGE")


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/health/live", "/metrics",
                                  "/api/v1/events?service=booking"])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_the_built_in_paths_answer_get_only(suite, path, method):
    response = requests.request(method, suite.base_url + path, timeout=10)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}


def test_routing_errors_are_json(suite):
    wrong_method = requests.delete(f"{suite.api}/directorates", timeout=10)
    assert_error(wrong_method, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in wrong_method.headers["Allow"]
    assert_error(requests.get(f"{suite.api}/bookings/K7MX%2F9QRD", headers={"X-CPR": "900112345"}, timeout=10), 404)
    assert_error(requests.get(f"{suite.api}/nothing-here", timeout=10), 404, "NOT_FOUND")
    assert_error(requests.get(f"{suite.api}/directorates?x={'a' * 9000}", timeout=10), 414, "URI_TOO_LONG")


def test_slow_clients_do_not_hold_the_workers(suite):
    """Twenty clients announce a body and send one byte of it; a normal booking still goes through."""
    url = urlsplit(suite.base_url)
    slow = []
    try:
        for _ in range(20):
            sock = socket.create_connection((url.hostname, url.port), timeout=10)
            sock.sendall(b"POST /api/v1/bookings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 200\r\n\r\n{")
            slow.append(sock)
        time.sleep(0.5)  # (so they are all waiting inside the server)
        response = requests.post(f"{suite.api}/bookings", json=booking(start=slot(suite, 3)),
                                 timeout=8)
        assert response.status_code == 201, response.text
    finally:
        for sock in slow:
            sock.close()


def test_every_request_is_counted_and_failure_counters_start_at_zero(suite):
    requests.get(f"{suite.api}/nothing/{uuid.uuid4().hex}", timeout=10)
    requests.put(f"{suite.base_url}/health", timeout=10)
    requests.get(f"{suite.base_url}/health", timeout=10)
    text = requests.get(f"{suite.base_url}/metrics", timeout=10).text
    if suite.mode == "embedded":  # the services' own series (distributed, each service has its own /metrics)
        assert re.search(r'mawaeed_http_request_seconds_count\{route="unmatched",service="server",status="404"\}',
                         text)
        assert re.search(r'mawaeed_http_request_seconds_count\{route="/health",service="server",status="405"\}',
                         text)
        assert 'mawaeed_dead_letters_total{consumer="booking.catalogue"} 0.0' in text
        assert 'mawaeed_relay_errors_total{service="booking"} 0.0' in text
    else:
        assert re.search(r'mawaeed_gateway_request_seconds_count\{route="unmatched",status="404",upstream="gateway"\}',
                         text)
