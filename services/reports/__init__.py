"""The monthly self-assessment report of a centre or a directorate: the insights figures of a month, each against
its target, the month's trends, the centres side by side and the worst hours of the week, as ONE self-contained
HTML file (fonts embedded, charts inline SVG; nothing is fetched from anywhere) that Chromium prints to PDF.

Pure: it takes the API's answers (services/cli/report.py fetches them) and returns HTML, so a fixture month
renders it in a unit test. Text is in both languages side by side in this module rather than in the pages' gettext
catalogues, because one report shows both at once (--lang ar|en picks one)."""
import base64
import copy
import statistics
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import jinja2
import yaml
from markupsafe import Markup, escape

from services.reports import charts
from shared.clock import LOCAL
from shared.schedule import wait_targets

FONTS = Path(__file__).resolve().parent.parent / "web" / "static" / "fonts"
CATALOGUE = Path(__file__).resolve().parent.parent / "availability" / "catalogue.yml"

# The report's targets, in this one place but for the service level's, which come from the catalogue's queue
# policy through shared.schedule.wait_targets (the same the insights service measures against); a catalogue's
# top-level `targets:` mapping overrides any of them (same keys). Service level: the share of people called within
# `minutes` of checking in, per kind of visit. Waits: the median within the service level's minutes and the 90th
# percentile within twice them. "min": at least; "max": at most. A figure with no target (the counts) is shown
# "for information".
TARGETS = {
    "slot_utilisation": {"min": 0.75},
    "arrivals_on_time_share": {"min": 0.85},
    "no_show_rate": {"max": 0.10},
    "abandonment_rate": {"max": 0.05},
    "recall_rate": {"max": 0.15},
    "satisfaction.mean": {"min": 4.0},
    "satisfaction.response_rate": {"min": 0.25},
}

# label: (Arabic, English)
TEXT = {
    "title": ("تقرير التقييم الذاتي الشهري", "Monthly self-assessment report"),
    "mawaeed": ("مواعيد", "Mawaeed"),
    "centre": ("المركز", "Centre"),
    "directorate": ("الإدارة", "Directorate"),
    "month": ("الشهر", "Month"),
    "generated": ("أُعدّ في", "Generated"),
    "summary_line": ("{met} من {judged} مؤشرًا بلغت هدفها", "{met} of {judged} measures met their target"),
    "figures": ("المؤشرات مقابل الأهداف", "Figures against their targets"),
    "figure": ("المؤشر", "Figure"),
    "value": ("القيمة", "Value"),
    "target": ("الهدف", "Target"),
    "status": ("الحالة", "Status"),
    "met": ("تحقق", "Met"),
    "not_met": ("لم يتحقق", "Not met"),
    "no_data": ("لا بيانات", "No data"),
    "info": ("للعلم", "For information"),
    "trends": ("اتجاهات الشهر", "Trends over the month"),
    "daily_served": ("المخدومون يوميًا", "Served per day"),
    "daily_wait": ("مدة الانتظار يوميًا (دقائق): الوسيط والشريحة المئوية 90",
                   "Waiting time per day (minutes): median and 90th percentile"),
    "median": ("الوسيط", "Median"),
    "p90": ("الشريحة المئوية 90", "90th percentile"),
    "daily_service_level": ("مستوى الخدمة يوميًا مقابل الهدف", "Service level per day against the target"),
    "sl_all": ("الجميع", "Everyone"),
    "sl_appointment": ("أصحاب المواعيد", "Appointments"),
    "sl_walk_in": ("بدون موعد", "Walk-ins"),
    "target_line": ("خط الهدف", "Target line"),
    "daily_satisfaction": ("متوسط الرضا يوميًا (من 5)", "Mean satisfaction per day (out of 5)"),
    "satisfaction_mean": ("متوسط الرضا", "Mean satisfaction"),
    "day_of_month": ("يوم الشهر", "Day of the month"),
    "wait_bands": ("الرضا حسب مدة الانتظار", "Satisfaction by waiting time"),
    "band": ("الانتظار (دقائق)", "Wait (minutes)"),
    "rated": ("عدد التقييمات", "Ratings"),
    "centres": ("المراكز جنبًا إلى جنب", "The centres side by side"),
    "heat": ("أسوأ ساعات الأسبوع: وسيط الانتظار (دقائق) حسب اليوم والساعة",
             "The worst hours of the week: median wait (minutes) by weekday and hour"),
    "heat_source": ("محسوبة من أحداث الطابور لهذا الشهر (وقت تسجيل الحضور، لكل من خُدم)؛ الخلايا الفارغة بلا بيانات.",
                    "Computed from the month's queue events (the check-in hour of everyone served); "
                    "empty cells had no one."),
    "heat_none": ("لا بيانات انتظار لهذا الشهر.", "No waiting times this month."),
    "worst_hours": ("أطول انتظار", "Longest waits"),
    "hour": ("الساعة", "Hour"),
    "people": ("عدد المخدومين", "People served"),
    "no_data_month": ("لا بيانات لهذا الشهر.", "No data for this month."),
    "how_to_read": ("كيف يُقرأ التقرير", "How to read this report"),
    "how_to_read_text": (
        "كل مؤشر مع هدفه: ✓ تحقق، ✗ لم يتحقق؛ «للعلم» مؤشر بلا هدف؛ «لا بيانات» حين لا يوجد ما يُحسب. "
        "النسب المئوية من جميع الحالات المعنية في الشهر. "
        "الأهداف الافتراضية: مواعيد خلال 10 دقائق وبدون موعد خلال 30 دقيقة لـ80% من الناس.",
        "Each figure with its target: ✓ met, ✗ not met; \"for information\": a figure without a target; \"no data\": "
        "nothing to measure. Shares are of every case concerned in the month. Default targets: appointments called "
        "within 10 minutes and walk-ins within 30, for 80% of people."),
}

WEEKDAYS = [("الأحد", "Sun"), ("الاثنين", "Mon"), ("الثلاثاء", "Tue"), ("الأربعاء", "Wed"), ("الخميس", "Thu"),
            ("الجمعة", "Fri"), ("السبت", "Sat")]  # Sunday first, as the centres' week
CHANNELS = {"web": ("الموقع", "web"), "app": ("التطبيق", "app"), "call_centre": ("مركز الاتصال", "call centre"),
            "counter": ("الكاونتر", "counter")}
KINDS = {"appointment": ("أصحاب المواعيد", "appointments"), "walk_in": ("بدون موعد", "walk-ins"),
         "all": ("الجميع", "everyone")}


def _figures() -> list[dict]:
    """Every figure of the insights answer: its path in F, label, how it is written, and its target's key."""
    rows = [
        ("bookings_made", "الحجوزات المنشأة", "Bookings made", "count", None),
        ("bookings_cancelled", "الحجوزات الملغاة", "Bookings cancelled", "count", None),
        ("bookings_moved", "الحجوزات المعدّلة", "Bookings moved", "count", None),
        ("bookings_expired", "الحجوزات المنتهية دون حضور", "Bookings expired", "count", None),
        ("bookings_by_channel", "الحجوزات حسب القناة", "Bookings by channel", "channels", None),
        ("places_offered", "الأماكن المعروضة", "Places offered", "count", None),
        ("slot_utilisation", "نسبة إشغال المواعيد", "Slot utilisation", "share", "slot_utilisation"),
        ("lead_time_hours_mean", "متوسط مدة الحجز المسبق (ساعات)", "Mean booking lead time (hours)", "number", None),
        ("check_ins.appointment_on_time", "حضور بموعد في الوقت", "Check-ins: appointments on time", "count", None),
        ("check_ins.appointment_late", "حضور بموعد متأخر", "Check-ins: appointments late", "count", None),
        ("check_ins.walk_in", "حضور بدون موعد", "Check-ins: walk-ins", "count", None),
        ("check_ins.priority", "حضور ذوي الأولوية", "Check-ins: priority", "count", None),
        ("arrivals_on_time_share", "نسبة الحضور في الوقت", "Arrivals on time", "share", "arrivals_on_time_share"),
    ]
    for kind, (ar, en) in KINDS.items():
        rows.append((f"service_level.{kind}", f"مستوى الخدمة: {ar}", f"Service level: {en}", "share",
                     f"service_level.{kind}"))
    for kind, (ar, en) in KINDS.items():
        rows += [(f"wait_minutes.{kind}.mean", f"متوسط الانتظار، {ar} (دقائق)", f"Mean wait, {en} (minutes)",
                  "number", None),
                 (f"wait_minutes.{kind}.median", f"وسيط الانتظار، {ar} (دقائق)", f"Median wait, {en} (minutes)",
                  "number", f"wait.{kind}.median"),
                 (f"wait_minutes.{kind}.p90", f"الانتظار، الشريحة 90، {ar} (دقائق)",
                  f"90th percentile wait, {en} (minutes)", "number", f"wait.{kind}.p90")]
    rows += [
        ("service_minutes.mean", "متوسط مدة الخدمة (دقائق)", "Mean service time (minutes)", "number", None),
        ("service_minutes.median", "وسيط مدة الخدمة (دقائق)", "Median service time (minutes)", "number", None),
        ("served", "المخدومون", "Served", "count", None),
        ("no_show_rate", "نسبة عدم الحضور عند النداء", "No-show rate", "share", "no_show_rate"),
        ("abandonment_rate", "نسبة المغادرين قبل النداء", "Abandonment rate", "share", "abandonment_rate"),
        ("recall_rate", "نسبة إعادة النداء", "Recall rate", "share", "recall_rate"),
        ("transfers", "التحويلات", "Transfers", "count", None),
        ("served_per_counter_hour", "المخدومون لكل ساعة كاونتر", "Served per counter hour", "number", None),
        ("satisfaction.mean", "متوسط الرضا (من 5)", "Mean satisfaction (out of 5)", "score", "satisfaction.mean"),
        ("satisfaction.distribution", "توزيع التقييمات (1 إلى 5)", "Ratings 1 to 5", "distribution", None),
        ("satisfaction.response_rate", "نسبة من قيّموا", "Response rate", "share", "satisfaction.response_rate"),
        ("satisfaction.comments", "التعليقات", "Comments", "count", None),
    ]
    return [{"path": p, "ar": ar, "en": en, "format": f, "target": t} for p, ar, en, f, t in rows]


FIGURES = _figures()
# The few figures the centres of a directorate are compared on, side by side.
COMPARED = ["served", "service_level.all", "service_level.appointment", "service_level.walk_in",
            "wait_minutes.all.median", "wait_minutes.all.p90", "no_show_rate", "abandonment_rate",
            "slot_utilisation", "satisfaction.mean", "bookings_made"]


def targets(catalogue_path: str | Path | None = None, branch: str | None = None) -> dict:
    """The targets: the service level's as the insights service measures it (shared.schedule.wait_targets of the
    catalogue's `queue.targets`, a branch's own over them), the others above, then the catalogue's `targets:`."""
    path = Path(catalogue_path) if catalogue_path else CATALOGUE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        document = {}
    queue_targets = dict((document.get("queue") or {}).get("targets") or {})
    for directorate in document.get("directorates") or []:
        for place in directorate.get("branches") or []:
            if place.get("id") == branch:
                queue_targets.update((place.get("queue") or {}).get("targets") or {})
    wait = wait_targets({"queue": {"targets": queue_targets}})
    merged = {"service_level": {"appointment": {"minutes": wait["appointment"], "share": wait["service_level"]},
                                "walk_in": {"minutes": wait["walk_in"], "share": wait["service_level"]},
                                "all": {"share": wait["service_level"]}},
              **copy.deepcopy(TARGETS)}
    _merge(merged, document.get("targets") or {})
    return merged


def _merge(into: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def target_of(key: str | None, goals: dict) -> tuple[str, float] | None:
    """("min"|"max", threshold) of a figure's target key, or None (for information)."""
    if key is None:
        return None
    if key.startswith("service_level."):
        kind = key.split(".")[1]
        share = goals["service_level"].get(kind, {}).get("share")
        return ("min", share) if share is not None else None
    if key.startswith("wait."):
        _, kind, stat = key.split(".")
        minutes = goals["service_level"].get(kind, {}).get("minutes")
        if minutes is None:  # everyone: the longer of the kinds' limits
            minutes = max(k.get("minutes", 0) for k in goals["service_level"].values()) or None
        return ("max", minutes if stat == "median" else 2 * minutes) if minutes else None
    goal = goals.get(key) or {}
    for side in ("min", "max"):
        if goal.get(side) is not None:
            return side, goal[side]
    return None


def value_at(figures: dict | None, path: str):
    value = figures
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def judge(value, target) -> str:
    """met | not_met | no_data | info"""
    if target is None:
        return "info" if value is not None else "no_data"
    if value is None:
        return "no_data"
    side, threshold = target
    return "met" if (value >= threshold if side == "min" else value <= threshold) else "not_met"


def _number(value, form: str) -> str:
    if value is None:
        return "—"
    if form == "share":
        return f"{value * 100:.0f}%"
    if form == "count":
        return f"{value:,}"
    if form == "score":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def _written(value, form: str) -> str:
    if form in ("channels", "distribution"):
        if not value:
            return "—"
        if form == "distribution":
            return " · ".join(f"{k}: {value.get(k, 0)}" for k in "12345")
        return " · ".join(f"{k}: {n}" for k, n in sorted(value.items()))
    return _number(value, form)


def _target_written(target, form: str) -> str:
    if target is None:
        return "—"
    side, threshold = target
    return f"{'≥' if side == 'min' else '≤'} {_number(threshold, form)}"


def figure_rows(figures: dict | None, goals: dict) -> list[dict]:
    rows = []
    for figure in FIGURES:
        value = value_at(figures, figure["path"])
        target = target_of(figure["target"], goals)
        rows.append({**figure, "value": _written(value, figure["format"]),
                     "goal": _target_written(target, figure["format"]), "status": judge(value, target)})
    return rows


# -- the heat map: weekday × hour of the waiting time, from the queue's events --------------------------------------

def wait_heat_map(events, branches: set[str] | None, first: date, last: date) -> dict:
    """{(weekday 0=Sunday, hour): {"median": minutes, "count": n}} of everyone served at `branches` (None: all)
    whose ticket's day is in first..last, by the local hour they checked in. `events`: the queue feed's event
    dicts (CustomerCheckedIn and TicketServed; others are ignored)."""
    checked_in, waits = {}, {}
    for event in events:
        payload = event.get("payload") or {}
        if branches is not None and payload.get("branch") not in branches:
            continue
        try:
            day = date.fromisoformat(payload.get("day", ""))
        except ValueError:
            continue
        if not first <= day <= last:
            continue
        kind = event.get("type", "").rsplit(".", 1)[-1]
        at = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).astimezone(LOCAL)
        if kind == "CustomerCheckedIn":
            checked_in[payload["ticket_id"]] = at
        elif kind == "TicketServed":
            waits[payload["ticket_id"]] = (day, payload["wait_seconds"], payload.get("service_seconds", 0), at)
    cells: dict = {}
    for ticket, (day, wait, service, served_at) in waits.items():
        # a check-in before the feed's first page is a served time less the service and the wait
        arrived = checked_in.get(ticket) or served_at - timedelta(seconds=wait + service)
        weekday = (day.weekday() + 1) % 7  # Python's Monday=0 -> Sunday=0
        cells.setdefault((weekday, arrived.hour), []).append(wait / 60)
    return {key: {"median": statistics.median(values), "count": len(values)} for key, values in cells.items()}


# -- the page -------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def font_faces() -> Markup:
    """The suite's own fonts as base64 @font-face rules (Arabic and Latin subsets, regular and bold)."""
    ranges = {"arabic": "U+0600-06FF, U+0750-077F, U+0870-088E, U+0890-0891, U+0898-08E1, U+08E3-08FF, "
                        "U+200C-200E, U+2010-2011, U+204F, U+2E41, U+FB50-FDFF, U+FE70-FE74, U+FE76-FEFC",
              "latin": "U+0000-00FF, U+0131, U+0152-0153, U+02BB-02BC, U+02C6, U+02DA, U+02DC, U+2000-206F, "
                       "U+20AC, U+2122, U+2191, U+2193, U+2212, U+2215, U+2264-2265, U+FEFF, U+FFFD"}
    rules = []
    for subset, unicode_range in ranges.items():
        for weight in (400, 700):
            data = base64.b64encode((FONTS / f"noto-sans-arabic-{subset}-{weight}-normal.woff2").read_bytes())
            rules.append(f'@font-face {{ font-family: "Noto Sans Arabic"; font-weight: {weight}; '
                         f'src: url(data:font/woff2;base64,{data.decode()}) format("woff2"); '
                         f'unicode-range: {unicode_range}; }}')
    return Markup("\n".join(rules))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("services.reports", "."), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of "YYYY-MM"; ValueError otherwise."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"{month!r} is not a month like 2027-01") from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def render(*, month: str, daily: dict, place: dict, lang: str = "both", centres: list[dict] | None = None,
           heat: dict | None = None, goals: dict | None = None, generated: datetime | None = None) -> str:
    """The report's HTML. daily: the insights answer by day for the month (its `total` is the month's);
    place: {"kind": "branch"|"directorate", "id", "name_ar", "name_en"}; centres: [{"id", "name_ar", "name_en",
    "figures": F}] (a directorate's); heat: wait_heat_map's answer (None: not drawn)."""
    goals = goals or targets()
    languages = ["ar", "en"] if lang == "both" else [lang]
    rtl = languages[0] == "ar"

    def t(key: str, **values) -> Markup:
        return both(*TEXT[key], **values)

    def both(ar: str, en: str, **values) -> Markup:
        texts = {"ar": ar.format(**values), "en": en.format(**values)}
        if len(languages) == 1:
            return escape(texts[languages[0]])
        return Markup('<span class="ar" lang="ar">{}</span> <span class="en" lang="en" dir="ltr">{}</span>').format(
            texts["ar"], texts["en"])

    def plain(key: str) -> str:  # for an SVG's title: one string
        ar, en = TEXT[key]
        return " / ".join({"ar": ar, "en": en}[code] for code in languages)

    periods = daily.get("periods") or []
    total = (daily.get("total") or {}).get("figures")
    rows = figure_rows(total, goals)
    for row in rows:  # a value is a line, or one line per booking channel (named in both languages)
        channels = value_at(total, row["path"]) if row["format"] == "channels" else None
        row["lines"] = [Markup("{} {}").format(both(*CHANNELS.get(k, (k, k))), f"{n:,}")
                        for k, n in sorted((channels or {}).items(), key=lambda kv: -kv[1])] or [row["value"]]
    judged = [r for r in rows if r["status"] in ("met", "not_met")]
    days = [p["period"][-2:] for p in periods]

    def series(path: str) -> list:
        return [value_at(p.get("figures"), path) for p in periods]

    sl_target = goals["service_level"].get("all", {}).get("share")
    sat_target = (goals.get("satisfaction.mean") or {}).get("min")
    chart_list = [
        {"title": t("daily_served"),
         "svg": charts.columns("served", days, series("served"), rtl, plain("daily_served")),
         "legend": [(charts.hatched_legend(), t("daily_served"))]},
        {"title": t("daily_wait"), "svg": charts.lines(days, [series("wait_minutes.all.median"),
                                                             series("wait_minutes.all.p90")], rtl, plain("daily_wait")),
         "legend": [(charts.legend_sample(0), t("median")), (charts.legend_sample(1), t("p90"))]},
        {"title": t("daily_service_level"),
         "svg": charts.lines(days, [series("service_level.all"), series("service_level.appointment"),
                                    series("service_level.walk_in")], rtl, plain("daily_service_level"),
                             target=sl_target, top=1, value_format=lambda v: f"{v * 100:.0f}%"),
         "legend": [(charts.legend_sample(0), t("sl_all")), (charts.legend_sample(1), t("sl_appointment")),
                    (charts.legend_sample(2), t("sl_walk_in")), (charts.legend_sample(None), t("target_line"))]},
        {"title": t("daily_satisfaction"),
         "svg": charts.lines(days, [series("satisfaction.mean")], rtl, plain("daily_satisfaction"),
                             target=sat_target, top=5, ticks=5),
         "legend": [(charts.legend_sample(0), t("satisfaction_mean")), (charts.legend_sample(None), t("target_line"))]},
    ]
    heat_chart, worst = None, []
    if heat is not None and heat:
        weekdays = [(i, " · ".join(WEEKDAYS[i][0 if code == "ar" else 1] for code in languages))
                    for i in range(7) if any(k[0] == i for k in heat)]
        hours = list(range(min(h for _, h in heat), max(h for _, h in heat) + 1))
        heat_chart = charts.heat_map(heat, weekdays, hours, rtl, plain("heat"))
        worst = [(both(WEEKDAYS[d][0], WEEKDAYS[d][1]), f"{h:02d}:00", f"{cell['median']:.0f}", cell["count"])
                 for (d, h), cell in sorted(heat.items(), key=lambda kv: -kv[1]["median"])[:3]]
    compared = [f for f in FIGURES if f["path"] in COMPARED]
    compared.sort(key=lambda f: COMPARED.index(f["path"]))
    centre_rows = [{"label": both(f["ar"], f["en"]), "cells": [
        {"value": _written(value_at(c.get("figures"), f["path"]), f["format"]),
         "status": judge(value_at(c.get("figures"), f["path"]), target_of(f["target"], goals))}
        for c in centres]} for f in compared] if centres else []
    return _environment().get_template("report.html").render(
        lang=languages[0], dir="rtl" if rtl else "ltr", both_languages=len(languages) == 2, t=t, both=both,
        month=month, place=place, rows=rows, met=sum(r["status"] == "met" for r in judged), judged=len(judged),
        charts=chart_list, has_days=bool(periods), heat_chart=heat_chart, heat_asked=heat is not None, worst=worst,
        centres=centres or [], centre_rows=centre_rows, bands=(total or {}).get("satisfaction_by_wait_band") or [],
        mark=charts.mark, fonts=font_faces(), service=daily.get("service"),
        generated=(generated or datetime.now(LOCAL)).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M"),
        period=f"{daily.get('from', '')} – {daily.get('to', '')}")
