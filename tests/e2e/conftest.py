"""End-to-end fixtures: the suite as a newcomer runs it (tests.support.suite.Suite), once per test module in
each mode, embedded and distributed."""
import pytest

from tests.support.suite import Suite, running


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    with running(Suite(request.param, tmp_path_factory.mktemp(request.param))) as started:
        yield started
