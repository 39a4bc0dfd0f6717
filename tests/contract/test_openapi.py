"""The OpenAPI document is the API's published contract: every route is in it, and it is valid OpenAPI 3.1."""
import inspect
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from services.cli import SERVICES, service_classes
from shared import openapi
from shared.web import SharedWsgiApp, api_routes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document():
    return openapi.build()


def operations(document) -> set:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_of_every_service_is_in_the_document(document):
    routes = {(endpoint.method, openapi.openapi_path(endpoint.url))
              for cls in service_classes(SERVICES) for endpoint in api_routes(cls) if openapi.published(endpoint.url)}
    assert len(routes) > 20
    assert routes - operations(document) == set()


def test_every_built_in_route_is_in_the_document(document):
    # The built-ins are the paths SharedWsgiApp answers itself (its table of literal paths and openapi's own).
    source = inspect.getsource(SharedWsgiApp.__call__)
    builtins = set(re.findall(r'"(/[A-Za-z0-9_./-]*)"\s*:', source)) | {
        openapi.DOCUMENT_PATH, openapi.PAGE_PATH, openapi.STYLE_PATH}
    assert {"/health", "/metrics", "/api/v1/events"} <= builtins
    assert {("GET", path) for path in builtins} - operations(document) == set()


def test_a_route_without_its_entry_fails_the_build():
    from shared.web import api

    class Undocumented:
        name = "undocumented"

        @api("GET", "/api/v1/nowhere")
        def nowhere(self, request):
            return {}

    with pytest.raises(openapi.OpenApiError, match="GET /api/v1/nowhere"):
        openapi.build({"undocumented": Undocumented})


def test_every_operation_says_who_may_call_it_and_every_error_it_names_is_described(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["security"], (method, path)
            assert ("x-roles" in op) == (op["security"] == [{"bearer": []}]), (method, path)
            for status, answer in op["responses"].items():
                for code in answer.get("x-error-codes", ()):
                    assert openapi.ERRORS[code][0] == int(status), (method, path, code)


def test_protected_routes_answer_401_and_403(document):
    erase = document["paths"]["/api/v1/people/erase"]["post"]
    assert erase["x-roles"] == ["system_admin"]
    assert {"401", "403"} <= set(erase["responses"])
    book = document["paths"]["/api/v1/bookings"]["post"]
    assert "x-roles" not in book and {"409", "429"} <= set(book["responses"])
    assert "SLOT_FULL" in book["responses"]["409"]["x-error-codes"]


def test_every_error_code_raised_in_the_code_is_described():
    raised = set()
    for path in list((ROOT / "shared").rglob("*.py")) + list((ROOT / "services").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        raised |= set(re.findall(r'\bcode="([A-Z_]+)"', text)) | set(re.findall(r'code = \d+, "([A-Z_]+)"', text))
    raised -= {"INTERNAL"}  # a 500: never part of the contract, only of a bug
    assert "SLOT_FULL" in raised
    assert raised - set(openapi.ERRORS) == set()


def test_the_reference_page_is_the_document_for_people():
    page = openapi._page()
    assert '<script' not in page and "http://" not in page and "https://" not in page  # nothing from elsewhere
    assert 'href="/api/docs/docs.css"' in page
    for operation_id in ("booking.book", "queue.call_next", "suite.api_v1_events", "suite.health"):
        assert f'id="{operation_id}"' in page
    assert "SLOT_FULL" in page and "system_admin" in page
