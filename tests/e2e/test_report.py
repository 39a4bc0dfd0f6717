"""`mawaeed report` against a running embedded suite: a day of January 2027 lived through the API (a booking, its
check-in, a call, served, feedback), then the month's report of the centre and of its directorate, as HTML and PDF,
read from the insights API and the queue's events feed."""
import re
import time
from pathlib import Path

import pytest
import requests

from services.cli.report import CHROMIUM
from tests.support.suite import Suite, running

pytestmark = pytest.mark.e2e

BRANCH, DIRECTORATE, SERVICE = "npra-isa-town", "npra", "passport-renewal"
CPR = "880512345"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with running(Suite("embedded", tmp_path_factory.mktemp("report"), now="2027-01-03T06:30:00+03:00")) as started:
        yield started


@pytest.fixture(scope="module")
def lived_day(suite):
    booked = requests.post(f"{suite.api}/bookings", timeout=10, json={
        "cpr": CPR, "branch": BRANCH, "service": SERVICE, "start": "2027-01-03T08:00:00+03:00",
        "name": "فاطمة علي", "language": "ar"})
    assert booked.status_code == 201, booked.text
    suite.restart(now="2027-01-03T07:55:00+03:00")  # the morning of the appointment
    staff = suite.as_("branch_manager", branches=[BRANCH])
    post = lambda path, body: requests.post(f"{suite.api}{path}", json=body, headers=staff, timeout=10)  # noqa: E731
    checked_in = post(f"/branches/{BRANCH}/check-ins", {"reference": booked.json()["reference"], "cpr": CPR})
    assert checked_in.status_code == 201, checked_in.text
    assert post(f"/branches/{BRANCH}/counters/5/open", {"services": [SERVICE]}).status_code in (200, 201)
    called = post(f"/branches/{BRANCH}/counters/5/call-next", {})
    assert called.status_code == 200, called.text
    served = post(f"/tickets/{checked_in.json()['ticket']['id']}/served", {})
    assert served.status_code == 200, served.text
    rated = post("/feedback", {"token": served.json()["feedback"]["token"], "score": 4, "comment": "جيد"})
    assert rated.status_code in (200, 201), rated.text
    analyst = suite.as_("analyst")
    deadline = time.monotonic() + 20
    while True:  # the insights service sums what the queue published, a moment later
        month = requests.get(f"{suite.api}/insights", headers=analyst, timeout=10, params={
            "branch": BRANCH, "from": "2027-01-01", "to": "2027-01-31", "by": "month"}).json()
        figures = month["total"]["figures"]
        if figures["served"] == 1 and (figures["satisfaction"]["mean"] or 0) == 4:
            return figures
        assert time.monotonic() < deadline, f"the insights did not see the day: {figures}"
        time.sleep(0.2)


def test_the_centre_report_as_html(suite, lived_day, tmp_path):
    out = tmp_path / "report.html"
    done = suite.run_cli("report", "--branch", BRANCH, "--month", "2027-01", "--out", str(out), "--api", suite.base_url)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert '<html lang="ar" dir="rtl">' in html and not re.search(r"https?://", html)
    assert "Isa Town" in html and "تقرير التقييم الذاتي الشهري" in html
    figures = html[html.index('class="figures"'):html.index("</table>")]
    served_row = figures[figures.index("Served</span>"):]
    assert re.search(r'<td class="num">1</td>', served_row[:400])  # the one person served that month
    assert len(re.findall(r'<svg class="chart', html)) == 5  # four trends and the heat map of the Sunday 07:00
    assert "Sun" in html[html.index('class="chart heat"'):]


def test_the_directorate_report_as_pdf(suite, lived_day, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    out = tmp_path / "npra.pdf"
    done = suite.run_cli("report", "--directorate", DIRECTORATE, "--month", "2027-01", "--out", str(out),
                         "--api", suite.base_url)
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3


def test_an_unknown_centre_is_one_line(suite, tmp_path):
    done = suite.run_cli("report", "--branch", "atlantis", "--month", "2027-01", "--out", str(tmp_path / "r.html"),
                         "--api", suite.base_url)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "atlantis" in done.stderr, done.stderr
