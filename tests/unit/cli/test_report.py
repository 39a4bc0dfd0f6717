"""The monthly report (services/reports, `mawaeed report`) from a fixture month of the insights API's shape
(report_month.json): every figure in both languages against its target, a chart per trend, the heat map's pure
function, nothing pointing at another host; and the PDF as Chromium prints it."""
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from services import reports
from services.cli import main
from services.cli.report import CHROMIUM, print_pdf

MONTH = json.loads((Path(__file__).with_name("report_month.json")).read_text(encoding="utf-8"))
PLACE = {"kind": "branch", "id": "npra-isa-town", "name_ar": "مركز مدينة عيسى", "name_en": "Isa Town centre"}
LOCAL = timezone(timedelta(hours=3))


def served(ticket: str, branch: str, checked_in: datetime, wait_minutes: float) -> list[dict]:
    """A ticket's check-in and served events as the queue's feed gives them."""
    day = checked_in.date().isoformat()
    return [{"type": "queue.CustomerCheckedIn", "occurred_at": checked_in.isoformat(),
             "payload": {"ticket_id": ticket, "branch": branch, "day": day}},
            {"type": "queue.TicketServed",
             "occurred_at": (checked_in + timedelta(minutes=wait_minutes + 5)).isoformat(),
             "payload": {"ticket_id": ticket, "branch": branch, "day": day, "wait_seconds": int(wait_minutes * 60),
                         "service_seconds": 300}}]


SUNDAY_10 = datetime(2027, 1, 3, 10, 5, tzinfo=LOCAL)
EVENTS = (served("t1", "npra-isa-town", SUNDAY_10, 40) + served("t2", "npra-isa-town", SUNDAY_10, 20)
          + served("t3", "npra-isa-town", SUNDAY_10, 30)
          + served("t4", "npra-isa-town", SUNDAY_10 + timedelta(days=1, hours=-2), 4)    # Monday 08:05
          + served("t5", "cid-riffa", SUNDAY_10, 90)                           # another centre
          + served("t6", "npra-isa-town", datetime(2026, 12, 31, 10, tzinfo=LOCAL), 90))  # another month


@pytest.fixture(scope="module")
def html() -> str:
    heat = reports.wait_heat_map(EVENTS, {"npra-isa-town"}, date(2027, 1, 1), date(2027, 1, 31))
    return reports.render(month="2027-01", daily=MONTH, place=PLACE, heat=heat)


def test_every_figure_is_labelled_in_both_languages(html):
    for figure in reports.FIGURES:
        assert str(_escaped(figure["ar"])) in html, figure["ar"]
        assert str(_escaped(figure["en"])) in html, figure["en"]
    for title in ("daily_served", "daily_wait", "daily_service_level", "daily_satisfaction", "heat"):
        ar, en = reports.TEXT[title]
        assert _escaped(ar) in html and _escaped(en) in html


def _escaped(text: str) -> str:
    from markupsafe import escape
    return str(escape(text))


def test_arabic_first_right_to_left_and_self_contained(html):
    assert re.search(r'<html lang="ar" dir="rtl">', html)
    assert html.index(reports.TEXT["title"][0]) < html.index(reports.TEXT["title"][1])
    assert not re.search(r"https?://", html)  # no host, not even a namespace URI
    assert "<link" not in html and "<script" not in html and "src=\"" not in html
    assert html.count("url(data:font/woff2;base64,") == 4  # the suite's own fonts, embedded


def test_figures_are_judged_against_their_targets(html):
    rows = {row["path"]: row for row in reports.figure_rows(MONTH["total"]["figures"], reports.targets())}
    # fixture: appointments 84% (target 80%) met; walk-ins 71% not met; satisfaction 4.21 >= 4 met;
    # slot utilisation 65% < 75% not met; p90 walk-in wait 63.5 > 60 not met; counts are for information
    assert rows["service_level.appointment"]["status"] == "met"
    assert rows["service_level.walk_in"]["status"] == "not_met"
    assert rows["satisfaction.mean"]["status"] == "met"
    assert rows["slot_utilisation"]["status"] == "not_met"
    assert rows["wait_minutes.walk_in.p90"]["status"] == "not_met"
    assert rows["wait_minutes.appointment.median"]["status"] == "met"
    assert rows["bookings_made"]["status"] == "info"
    not_met = sum(r["status"] == "not_met" for r in rows.values())
    met = sum(r["status"] == "met" for r in rows.values())
    # each judgement is a word in both languages and a drawn mark, not a colour
    assert html.count('class="status not_met"') == not_met and html.count('class="status met"') == met
    assert html.count('class="mark"') >= met + not_met
    assert "لم يتحقق" in html and "Not met" in html and "تحقق" in html and ">Met<" in html
    assert f"{met} of {met + not_met} measures met their target" in html


def test_a_missing_figure_says_no_data():
    figures = json.loads(json.dumps(MONTH["total"]["figures"]))
    figures["service_level"]["walk_in"] = None
    rows = {row["path"]: row for row in reports.figure_rows(figures, reports.targets())}
    assert rows["service_level.walk_in"]["status"] == "no_data" and rows["service_level.walk_in"]["value"] == "—"


def test_a_chart_per_trend_drawn_as_svg_for_black_and_white(html):
    charts = re.findall(r'<svg class="chart[^"]*"[^>]*aria-label="([^"]+)"', html)
    assert len(charts) == 5, charts  # served, waits, service level, satisfaction, heat map
    assert "stroke-dasharray" in html and 'fill="url(#served-hatch)"' in html  # styles, not colours alone


def test_catalogue_targets_override_the_defaults(tmp_path):
    catalogue = tmp_path / "catalogue.yml"
    catalogue.write_text("targets:\n  service_level:\n    walk_in: {minutes: 45, share: 0.7}\n"
                         "  no_show_rate: {max: 0.05}\n")
    goals = reports.targets(catalogue)
    assert goals["service_level"]["walk_in"] == {"minutes": 45, "share": 0.7}
    assert goals["service_level"]["appointment"] == {"minutes": 10, "share": 0.8}
    rows = {row["path"]: row for row in reports.figure_rows(MONTH["total"]["figures"], goals)}
    assert rows["service_level.walk_in"]["status"] == "met"        # 71% >= 70%
    assert rows["wait_minutes.walk_in.p90"]["status"] == "met"     # 63.5 <= 2 x 45
    assert rows["no_show_rate"]["status"] == "not_met"             # 6.1% > 5%


def test_heat_map_is_the_median_wait_by_weekday_and_check_in_hour():
    heat = reports.wait_heat_map(EVENTS, {"npra-isa-town"}, date(2027, 1, 1), date(2027, 1, 31))
    assert heat == {(0, 10): {"median": 30.0, "count": 3}, (1, 8): {"median": 4.0, "count": 1}}
    everywhere = reports.wait_heat_map(EVENTS, None, date(2027, 1, 1), date(2027, 1, 31))
    assert everywhere[(0, 10)] == {"median": 35.0, "count": 4}


def test_heat_map_without_the_check_in_takes_it_back_from_the_served_time():
    only_served = [e for e in EVENTS[:2] if e["type"] == "queue.TicketServed"]
    assert reports.wait_heat_map(only_served, None, date(2027, 1, 1), date(2027, 1, 31)) == {
        (0, 10): {"median": 40.0, "count": 1}}


def test_a_directorate_compares_its_centres_side_by_side():
    figures = MONTH["total"]["figures"]
    centres = [{"id": "npra-isa-town", "name_ar": "مدينة عيسى", "name_en": "Isa Town", "figures": figures},
               {"id": "npra-muharraq", "name_ar": "المحرق", "name_en": "Muharraq", "figures": None}]
    html = reports.render(month="2027-01", daily=MONTH, centres=centres, heat={},
                          place={"kind": "directorate", "id": "npra", "name_ar": "الجوازات", "name_en": "Passports"})
    table = html[html.index('class="centres"'):]
    table = table[:table.index("</table>")]
    assert "Isa Town" in table and "المحرق" in table and "2,311" in table
    assert table.count("<tr>") == len(reports.COMPARED) + 1
    assert reports.TEXT["heat_none"][1] in html  # asked, but no waits


def test_one_language_only(html):
    english = reports.render(month="2027-01", daily=MONTH, place=PLACE, lang="en")
    assert '<html lang="en" dir="ltr">' in english and "لم يتحقق" not in english and "Not met" in english
    arabic = reports.render(month="2027-01", daily=MONTH, place=PLACE, lang="ar")
    assert 'dir="rtl"' in arabic and "Not met" not in arabic and "Served per day" not in arabic


def test_an_empty_month_still_renders():
    empty = {"scope": {"branch": "x"}, "service": None, "from": "2027-02-01", "to": "2027-02-28", "by": "day",
             "periods": [], "total": {"figures": None}}
    html = reports.render(month="2027-02", daily=empty, place=PLACE)
    assert reports.TEXT["no_data_month"][1] in html and "0 of 0" in html


def test_the_command_refuses_in_one_line(tmp_path, capsys):
    assert main(["report", "--branch", "x", "--month", "2027-13", "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.strip() == "mawaeed report: '2027-13' is not a month like 2027-01"
    assert main(["report", "--branch", "x", "--month", "2027-01", "--out", str(tmp_path / "r.docx")]) == 2
    assert "name.html or name.pdf" in capsys.readouterr().err


def test_a_pdf_without_chromium_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("services.cli.report.CHROMIUM", str(tmp_path / "no-chromium"))
    assert main(["report", "--branch", "x", "--month", "2027-01", "--out", str(tmp_path / "r.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Chromium" in err and not (tmp_path / "r.pdf").exists()


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}")
def test_the_pdf_is_printed_by_chromium(html, tmp_path):
    out = tmp_path / "report.pdf"
    print_pdf(html, out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 3, pages  # the figures, the trends and the heat map do not fit on fewer A4 pages
    assert b"/FontFile" in data  # the fonts travel inside the PDF


def test_the_insights_waiting_minutes_set_the_wait_targets(tmp_path):
    catalogue = tmp_path / "catalogue.yml"
    catalogue.write_text("queue:\n  targets: {walk_in_wait_minutes: 20}\ndirectorates:\n  - id: d\n    branches:\n"
                         "      - {id: b, queue: {targets: {appointment_wait_minutes: 5}}}\n")
    assert reports.targets(catalogue)["service_level"]["walk_in"]["minutes"] == 20
    assert reports.targets(catalogue)["service_level"]["appointment"]["minutes"] == 10
    assert reports.targets(catalogue, "b")["service_level"]["appointment"]["minutes"] == 5
    assert reports.target_of("wait.walk_in.p90", reports.targets(catalogue)) == ("max", 40)
