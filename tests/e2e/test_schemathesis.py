"""The running suite answers as its OpenAPI document says: schemathesis generates requests for every operation of
GET /api/v1/openapi.json (valid ones and invalid ones) against the embedded suite, signed in with a role each
protected operation lets in, and checks that no answer is a server error and that every status, content type and
body is the one the document gives for that operation.

Bounded: a few examples per operation, a fixed seed (derandomised), no shrinking. The live board
(`/branches/{branch}/live`) is a stream that never ends, so no request/answer check can read it: its errors are
in tests/unit/web and its stream in tests/integration/test_live.py."""
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from shared import openapi
from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAMS = ["/api/v1/branches/{branch}/live"]
# The role each protected operation is exercised with, the first of its x-roles found here: the widest reach.
PREFERRED = ("directorate_admin", "auditor", "analyst", "citizen", "system_admin")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("schemathesis"))) as suite:
        directorates = [d["id"] for d in requests.get(f"{suite.api}/directorates", timeout=10).json()]
        suite.callers = {
            "directorate_admin": suite.as_("directorate_admin", directorates=directorates, counter="5"),
            "auditor": suite.as_("auditor"), "analyst": suite.as_("analyst"),
            "citizen": suite.as_("citizen", cpr="900112345", name="Fatima Ali"),
            "system_admin": suite.as_("system_admin"),
        }
        yield suite


# The document as the suite builds it; the first test checks that the running suite serves exactly this one.
DOCUMENT = openapi.build()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path=STREAMS)


def test_the_suite_serves_its_document(embedded):
    answer = requests.get(f"{embedded.base_url}/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.json() == DOCUMENT
    assert "SLOT_FULL" in requests.get(f"{embedded.base_url}/api/docs", timeout=10).text


def headers_for(case, callers: dict) -> dict:
    roles = case.operation.definition.raw.get("x-roles")
    if not roles:
        return {}
    role = next(r for r in PREFERRED if r in roles)
    return dict(callers[role])


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), database=None)
def test_the_suite_answers_as_its_document_says(case, embedded):
    case.call_and_validate(base_url=embedded.base_url, headers=headers_for(case, embedded.callers), checks=CHECKS,
                           timeout=30)
