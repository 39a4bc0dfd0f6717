"""End-to-end fixtures: the suite as a newcomer runs it (tests.support.suite.Suite), once per test module in
each mode, embedded and distributed."""
import pytest

from tests.support.suite import Suite


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    suite = Suite(request.param, tmp_path_factory.mktemp(request.param))
    try:
        suite.start()
        yield suite
    finally:
        suite.stop()
        suite.cleanup()
