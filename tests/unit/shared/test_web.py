"""shared.web: JSON in and out, the error body every service answers with, and the listing of a class's routes."""
import json

import kombu.exceptions as kombu_exc
import pytest
import sqlalchemy.exc as sa_exc
from marshmallow import Schema, fields
from nameko.rpc import rpc
from nameko.timer import timer
from nameko.web.handlers import HttpRequestHandler
from werkzeug.test import EnvironBuilder

from services.booking.service import BookingService
from shared.auth import PUBLIC
from shared.errors import BadRequest, DomainError, InvalidInput, NotFound, PayloadTooLarge
from shared.web import MAX_BODY_BYTES, ApiEndpoint, api, api_routes, error_response, json_response, parse_json


class Visit(Schema):
    cpr = fields.String(required=True)
    party = fields.Integer()


def posted(body: bytes):
    request = EnvironBuilder(method="POST", data=body, content_type="application/json").get_request()
    request.max_content_length = MAX_BODY_BYTES  # as ApiEndpoint.handle_request sets it
    return request


def body_of(response) -> dict:
    assert response.content_type == "application/json; charset=utf-8"
    return json.loads(response.get_data())


def test_parse_json_loads_the_body_through_the_schema():
    assert parse_json(posted(b'{"cpr": "900112345", "party": "2"}'), Visit()) == {"cpr": "900112345", "party": 2}


def test_a_body_of_exactly_the_limit_is_read():
    body = b'{"cpr": "900112345"}'.ljust(MAX_BODY_BYTES)  # trailing whitespace is still JSON
    assert parse_json(posted(body), Visit()) == {"cpr": "900112345"}


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400_malformed_json(body):
    with pytest.raises(BadRequest) as caught:
        parse_json(posted(body), Visit())
    assert (caught.value.status, caught.value.code) == (400, "MALFORMED_JSON")
    assert caught.value.message and caught.value.message_ar


def test_a_body_over_the_limit_is_413():
    with pytest.raises(PayloadTooLarge) as caught:
        parse_json(posted(b" " * (MAX_BODY_BYTES + 1)), Visit())
    assert (caught.value.status, caught.value.code) == (413, "BODY_TOO_LARGE")


def test_invalid_fields_are_422_with_a_message_per_field():
    with pytest.raises(InvalidInput) as caught:
        parse_json(posted(b'{"party": "many"}'), Visit())
    assert (caught.value.status, caught.value.code) == (422, "INVALID_INPUT")
    assert set(caught.value.fields) == {"cpr", "party"}


def test_json_response_writes_compact_utf8_json():
    response = json_response({"name_ar": "مركز مدينة عيسى"}, 201, headers={"Location": "/x"})
    assert (response.status_code, response.headers["Location"]) == (201, "/x")
    assert response.get_data(as_text=True) == '{"name_ar":"مركز مدينة عيسى"}'
    assert body_of(response) == {"name_ar": "مركز مدينة عيسى"}


def test_an_error_body_is_code_message_and_message_ar_with_fields_only_when_there_are_some():
    response = error_response(NotFound("No such booking.", code="BOOKING_NOT_FOUND", message_ar="لا يوجد حجز."))
    assert response.status_code == 404
    assert body_of(response) == {"error": {"code": "BOOKING_NOT_FOUND", "message": "No such booking.",
                                           "message_ar": "لا يوجد حجز."}}
    invalid = error_response(InvalidInput("Invalid.", fields={"cpr": ["Required."]}, message_ar="غير صحيح."))
    assert (invalid.status_code, body_of(invalid)["error"]["fields"]) == (422, {"cpr": ["Required."]})


@pytest.mark.parametrize("result, status, body", [
    ({"ok": True}, 200, {"ok": True}),
    ((201, {"reference": "K7MX-9QRD"}), 201, {"reference": "K7MX-9QRD"}),
])
def test_an_endpoint_answers_a_body_or_a_status_and_body_as_json(result, status, body):
    response = ApiEndpoint("GET", "/x").response_from_result(result)
    assert (response.status_code, body_of(response)) == (status, body)


def test_an_endpoint_answers_none_with_204():
    assert ApiEndpoint("POST", "/x").response_from_result(None).status_code == 204


def test_an_endpoint_answers_a_domain_error_with_its_body_and_anything_else_with_500_internal():
    refused = ApiEndpoint("POST", "/x").response_from_exception(DomainError("Full.", code="SLOT_FULL",
                                                                            message_ar="ممتلئ."))
    assert (refused.status_code, body_of(refused)["error"]["code"]) == (409, "SLOT_FULL")
    failed = ApiEndpoint("POST", "/x").response_from_exception(RuntimeError("the database fell over"))
    assert failed.status_code == 500
    assert body_of(failed) == {"error": {"code": "INTERNAL", "message": "Something went wrong on our side.",
                                         "message_ar": "حدث خطأ من جهتنا."}}


class Counter:
    name = "counter"

    @api("POST", "/counters/<counter>/open")
    def open(self, request, counter):
        pass

    @api("GET,HEAD", "/counters")
    def counters(self, request):
        pass

    @rpc
    def status(self):
        pass

    @timer(interval=60)
    def tick(self):
        pass

    def helper(self):
        pass


def test_api_routes_lists_the_api_endpoints_a_class_declares_and_nothing_else():
    routes = api_routes(Counter)
    assert [(endpoint.method, endpoint.url) for endpoint in routes] == [
        ("GET,HEAD", "/counters"), ("POST", "/counters/<counter>/open")]
    assert [sorted(endpoint.get_url_rule().methods) for endpoint in routes] == [["GET", "HEAD"], ["POST"]]
    assert api_routes(object) == []


def test_api_routes_of_a_service_are_the_routes_it_documents():
    assert [(endpoint.method, endpoint.url, endpoint.allow) for endpoint in api_routes(BookingService)] == [
        ("POST", "/api/v1/bookings", None), ("GET", "/api/v1/bookings/<reference>", None),
        ("POST", "/api/v1/bookings/<reference>/cancel", None), ("POST", "/api/v1/bookings/<reference>/reschedule", None),
        ("GET", "/api/v1/challenge", None), ("GET", "/api/v1/me/bookings", ("citizen",)),
        ("POST", "/api/v1/people/erase", ("system_admin",))]


# -- answered, not queued: overload and a dependency that does not answer ------------------------------------

class _Container:
    service_name = "booking"
    config = {"MAWAEED_MAX_IN_FLIGHT": 2}


def _endpoint(method: str = "GET") -> ApiEndpoint:
    endpoint = ApiEndpoint(method, "/x")
    endpoint.container = _Container()
    endpoint.verifier = type("Anyone", (), {"principal": staticmethod(lambda header: PUBLIC)})()
    endpoint.trusted, endpoint.max_in_flight, endpoint.body_timeout = (), 2, 1.0
    return endpoint


def test_a_service_with_every_slot_in_flight_answers_503_overloaded_at_once(monkeypatch):
    ran = []
    monkeypatch.setattr(HttpRequestHandler, "handle_request", lambda self, request: ran.append(request) or
                        json_response({"ok": True}))
    monkeypatch.setitem(ApiEndpoint._in_flight, "booking", 2)
    answer = _endpoint().handle_request(EnvironBuilder(method="GET").get_request())
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert body_of(answer)["error"]["code"] == "OVERLOADED" and body_of(answer)["error"]["message_ar"]
    assert ran == []  # the service method never ran
    monkeypatch.setitem(ApiEndpoint._in_flight, "booking", 1)  # one slot free: served, and the count comes back
    assert _endpoint().handle_request(EnvironBuilder(method="GET").get_request()).status_code == 200
    assert len(ran) == 1 and ApiEndpoint._in_flight["booking"] == 1


@pytest.mark.parametrize("failure", [
    sa_exc.OperationalError("SELECT 1", {}, Exception("could not connect to server")),
    kombu_exc.OperationalError("connection refused"),
    ConnectionRefusedError(111, "refused"),
])
def test_a_database_or_broker_that_does_not_answer_is_503_with_retry_after_not_500(failure):
    answer = ApiEndpoint("POST", "/x").response_from_exception(failure)
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert body_of(answer)["error"]["code"] == "SERVICE_UNAVAILABLE" and body_of(answer)["error"]["message_ar"]


def test_a_bug_is_still_a_500_not_dressed_up_as_unavailable():
    assert ApiEndpoint("POST", "/x").response_from_exception(KeyError("script")).status_code == 500
