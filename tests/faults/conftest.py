"""Fixtures of the fault suite: its own RabbitMQ node and PostgreSQL cluster for the session (tests/faults/nodes.py),
the suite in the distributed mode on them (one process per service and the gateway, each restartable alone), and
the table of results, printed at the end of the run and written to the session's temporary folder."""
import sys

import pytest

from tests.faults.nodes import PostgresCluster, RabbitNode
from tests.faults.report import RESULTS, RESULTS_FILE, markdown_table


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: fault injection on the distributed suite (own RabbitMQ and PostgreSQL)")


@pytest.fixture(scope="session")
def nodes():
    """(RabbitNode, PostgresCluster), started for the session and removed afterwards."""
    rabbit, postgres = RabbitNode(), PostgresCluster()
    try:
        rabbit.start()
        postgres.start()
        yield rabbit, postgres
    finally:
        for node in (rabbit, postgres):
            try:
                node.stop()
            except Exception as exc:  # report, but let the other stop too
                print(f"could not stop {node}: {exc}", file=sys.stderr)


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    table = markdown_table(RESULTS)
    terminalreporter.write_sep("-", "fault injection results")
    terminalreporter.write_line(table)
    for path in RESULTS_FILE:
        terminalreporter.write_line(f"(also in {path})")
