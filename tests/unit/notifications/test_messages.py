"""Rendering messages (services/notifications/messages.py) and the templates it renders
(services/notifications/templates/{kind}.{lang}.j2), each the way the notifications service renders them: its one
Jinja2 environment, `get_template(...).make_module(context)`, parts read as module attributes and stripped."""
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser

import jinja2
import pytest
from icalendar import Calendar
from markupsafe import escape

from shared.clock import UTC
from services.notifications import messages
from services.notifications.messages import TEMPLATES

KINDS = ("confirmation", "reminder", "cancellation", "reschedule", "called", "survey")
LANGS = ("ar", "en")
EMAIL_KINDS = tuple(kind for kind in KINDS if kind != "called")
PARTS = {**{kind: ("subject", "text", "html", "sms") for kind in EMAIL_KINDS}, "called": ("subject", "sms")}
SMS_LIMIT = {"ar": 140, "en": 160}
ONE_ARABIC_SMS = {"cancellation", "reschedule", "called"}  # these fit one 70-character Arabic SMS
ARABIC_LETTER = re.compile(r"[\u0621-\u064A]")
ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
CPR = "880412345"

ENV = messages.environment()

# the variables each kind's template must use: taking any one away fails the render
REQUIRED = {
    "confirmation": {"name", "branch_name", "address", "service_name", "reference", "help_url", "date", "time",
                     "duration_minutes", "booking_url", "what_to_bring"},
    "reminder": {"name", "branch_name", "address", "service_name", "reference", "help_url", "date", "time", "booking_url",
                 "what_to_bring"},
    "cancellation": {"name", "branch_name", "service_name", "reference", "help_url", "date", "time"},
    "reschedule": {"name", "branch_name", "address", "service_name", "reference", "help_url", "date", "time", "previous_date",
                   "previous_time", "duration_minutes", "booking_url", "what_to_bring"},
    "called": {"ticket_number", "counter"},
    "survey": {"name", "branch_name", "service_name", "reference", "help_url", "feedback_url", "ticket_number"},
}

# a feedback link as shared/feedback.link makes it: public URL, /feedback/, ticket id (a UUID), ".", 20 characters
FEEDBACK_URL = "https://mawaeed.example.bh/feedback/0b6f3c2e-8d1a-4f57-a9c4-2e7d5b13f086.W8kq3Zp0Lr7Yx2NbT5vA"

SAME_IN_BOTH = {"reference": "K7MX-9QRD", "time": "09:20", "duration_minutes": 20, "previous_time": "11:40",
                "ticket_number": "P-014", "counter": "5", "feedback_url": FEEDBACK_URL}
SAMPLES = {
    "ar": {**SAME_IN_BOTH, "name": "فاطمة عبدالله الجودر", "branch_name": "فرع مدينة عيسى",
           "address": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى",
           "service_name": "تجديد جواز السفر", "help_url": "https://mawaeed.example.bh/help?lang=ar&topic=booking",
           "date": "الاثنين 7 ديسمبر 2026", "previous_date": "الأحد 6 ديسمبر 2026",
           "booking_url": "https://mawaeed.example.bh/ar/bookings/K7MX-9QRD",
           "what_to_bring": ["البطاقة الذكية (بطاقة الهوية)", "جواز السفر الحالي", "صورة شخصية حديثة"]},
    "en": {**SAME_IN_BOTH, "name": "Maria D'Souza", "branch_name": "Isa Town branch",
           "address": "Building 123, Road 613, Block 806, Isa Town",
           "service_name": "Passport renewal", "help_url": "https://mawaeed.example.bh/help?lang=en&topic=booking",
           "date": "Monday 7 December 2026", "previous_date": "Sunday 6 December 2026",
           "booking_url": "https://mawaeed.example.bh/en/bookings/K7MX-9QRD",
           "what_to_bring": ["Smart card (identity card)", "Current passport", "A recent passport photo"]},
}
# the longest values the seed catalogue and the date format give, for the SMS length limits
LONGEST = {
    "ar": {"name": "عبدالرحمن محمد عبدالله يوسف آل خليفة", "branch_name": "مركز خدمات التخليص الجمركي في ميناء خليفة بن سلمان",
           "address": "مجمع وادي السيل، مبنى 1080، طريق 1729، مجمع 917، الرفاع",
           "service_name": "شهادة حسن السيرة والسلوك", "date": "الأربعاء 30 ديسمبر 2026",
           "previous_date": "الثلاثاء 29 ديسمبر 2026", "ticket_number": "K-114", "counter": "12"},
    "en": {"name": "Christopher Alexander Fernandes-D'Souza",
           "branch_name": "Customs Clearance Service Centre, Khalifa bin Salman Port",
           "address": "Wadi Al Sail Mall, Building 1080, Road 1729, Block 917, Riffa",
           "service_name": "Certificate of good conduct", "date": "Wednesday 30 September 2026",
           "previous_date": "Wednesday 23 September 2026", "ticket_number": "K-114", "counter": "12"},
}


def facts(subject: tuple, sms: tuple, body: tuple = ()) -> dict:
    """Which context values must appear in which part; the body's in both the text and the html."""
    return {"subject": subject, "sms": sms, **({"text": body, "html": body} if body else {})}


APPOINTMENT = facts(("branch_name", "date", "time"), ("reference", "branch_name", "address", "date", "time"),
                    ("name", "reference", "service_name", "branch_name", "address", "date", "time", "booking_url",
                     "help_url"))
FACTS = {
    "confirmation": APPOINTMENT,
    "reminder": APPOINTMENT,
    "cancellation": facts(("branch_name", "date"), ("reference", "date", "time"),
                          ("name", "reference", "service_name", "branch_name", "date", "time", "help_url")),
    "reschedule": facts(("date", "time"), ("reference", "date", "time"),
                        ("name", "reference", "previous_date", "previous_time", "date", "time", "branch_name",
                         "address", "service_name", "booking_url", "help_url")),
    "called": facts(("ticket_number",), ("ticket_number", "counter")),
    "survey": facts(("branch_name",), ("feedback_url",),
                    ("name", "branch_name", "service_name", "feedback_url", "ticket_number", "reference", "help_url")),
}
BRING_HEADING = {"ar": "إحضار", "en": "Please bring"}
CALENDAR = {"ar": "ملف تقويم", "en": "calendar file"}
REFERENCE_LABEL = {"ar": "رقم الحجز", "en": "Booking reference"}


def context(kind: str, lang: str, **overrides) -> dict:
    """What the notifications service passes for one kind, plus a CPR that no template may show."""
    sample = SAMPLES[lang]
    keys = {"name", "branch_name", "service_name", "reference", "help_url"}
    if kind in ("confirmation", "reminder", "cancellation", "reschedule"):
        keys |= {"date", "time", "duration_minutes", "booking_url", "what_to_bring", "address"}
    if kind == "reschedule":
        keys |= {"previous_date", "previous_time"}
    if kind == "called":
        keys |= {"ticket_number", "counter"}
    if kind == "survey":
        keys |= {"feedback_url", "ticket_number"}
    return {**{key: sample[key] for key in keys}, "cpr": CPR, **overrides}


def render(kind: str, lang: str, ctx: dict) -> dict[str, str]:
    module = ENV.get_template(f"{kind}.{lang}.j2").make_module(ctx)
    parts = {}
    for part in PARTS[kind]:
        assert hasattr(module, part), f"{kind}.{lang}.j2 defines no {part}"
        parts[part] = str(getattr(module, part)).strip()
    return parts


def shown(value, part: str) -> str:
    """How a context value looks in a part: escaped in html, as written in the plain-text parts."""
    return str(escape(value)) if part == "html" else str(value)


class TagBalance(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open, self.errors, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


every_template = pytest.mark.parametrize("kind, lang", [(kind, lang) for kind in KINDS for lang in LANGS])
every_email = pytest.mark.parametrize("kind, lang", [(kind, lang) for kind in EMAIL_KINDS for lang in LANGS])


def test_the_directory_holds_exactly_the_twelve_templates():
    assert sorted(path.name for path in TEMPLATES.iterdir()) == sorted(
        f"{kind}.{lang}.j2" for kind in KINDS for lang in LANGS)


@every_template
def test_every_part_is_there_and_clean(kind, lang):
    parts = render(kind, lang, context(kind, lang))
    for part, value in parts.items():
        assert value, f"{kind}.{lang} {part} is empty"
        for leftover in ("None", "Undefined", "{{", "}}", "{%", "%}", "{#", "#}"):
            assert leftover not in value, f"{kind}.{lang} {part} contains {leftover!r}"
    assert "\n" not in parts["subject"]
    for part in ("subject", "sms", "text"):
        if part in parts:
            assert not re.search(r"</?[a-zA-Z][^>]*>", parts[part]), f"HTML in {kind}.{lang} {part}"


@every_email
def test_html_is_a_small_complete_document(kind, lang):
    ctx = context(kind, lang)
    html = render(kind, lang, ctx)["html"]
    assert html.startswith("<!doctype html>")
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    assert html.endswith("</html>")
    assert '<meta charset="utf-8">' in html
    assert re.search(r"<title>[^<]+</title>", html)
    balance = TagBalance()
    balance.feed(html)
    balance.close()
    assert not balance.errors and not balance.open, (balance.errors, balance.open)
    # inline CSS only; no external images, fonts, style sheets or scripts
    assert balance.tags.isdisjoint({"style", "link", "script", "img", "iframe", "object"}), balance.tags
    for forbidden in ("url(", "@import", "@font-face", " class="):
        assert forbidden not in html
    links = set(re.findall(r"https?://[^\"'\s<>]+", html))
    assert links <= {str(escape(ctx[key])) for key in ("booking_url", "help_url", "feedback_url") if key in ctx}
    if kind == "survey":
        assert ctx["ticket_number"] in html and ctx["reference"] in html
    else:
        assert ctx["reference"] in html and ctx["time"] in html


@every_template
def test_sms_is_one_short_plain_line(kind, lang):
    sms = render(kind, lang, context(kind, lang))["sms"]
    assert "\n" not in sms and "<" not in sms and ">" not in sms
    assert len(sms) <= SMS_LIMIT[lang], (len(sms), sms)
    if lang == "ar" and kind in ONE_ARABIC_SMS:
        assert len(sms) <= 70, (len(sms), sms)


@every_template
def test_sms_stays_within_the_limit_with_the_longest_values(kind, lang):
    sms = render(kind, lang, context(kind, lang, **{
        key: value for key, value in LONGEST[lang].items() if key in context(kind, lang)}))["sms"]
    assert len(sms) <= SMS_LIMIT[lang], (len(sms), sms)
    if lang == "ar" and kind in ONE_ARABIC_SMS:
        assert len(sms) <= 70, (len(sms), sms)


@every_template
def test_arabic_templates_are_arabic_and_english_ones_are_not(kind, lang):
    for part, value in render(kind, lang, context(kind, lang)).items():
        if lang == "ar":
            assert ARABIC_LETTER.search(value), f"no Arabic in {kind}.ar {part}"
        else:
            assert not ARABIC_SCRIPT.search(value), f"Arabic in {kind}.en {part}: {ARABIC_SCRIPT.findall(value)}"


@every_template
def test_the_facts_appear_where_they_must(kind, lang):
    ctx = context(kind, lang)
    parts = render(kind, lang, ctx)
    for part, keys in FACTS[kind].items():
        for key in keys:
            assert shown(ctx[key], part) in parts[part], f"{kind}.{lang} {part} lacks {key} {ctx[key]!r}"
    if "what_to_bring" in REQUIRED[kind]:
        for part in ("text", "html"):
            assert BRING_HEADING[lang] in parts[part]
            for item in ctx["what_to_bring"]:
                assert shown(item, part) in parts[part], f"{kind}.{lang} {part} lacks {item!r}"
    # the calendar file goes with the confirmation email only
    for part in ("text", "html"):
        if part in parts:
            assert (CALENDAR[lang] in parts[part]) == (kind == "confirmation"), (kind, lang, part)
    assert CALENDAR[lang] not in parts["sms"]


@every_template
def test_no_part_shows_a_cpr(kind, lang):
    for part, value in render(kind, lang, context(kind, lang)).items():
        assert CPR not in value, f"{kind}.{lang} {part} shows the CPR"
        assert CPR not in re.sub(r"\D", "", value), f"{kind}.{lang} {part} shows the CPR's digits"


@pytest.mark.parametrize("lang", LANGS)
def test_a_walk_in_survey_has_no_reference(lang):
    ctx = context("survey", lang, reference=None)
    parts = render("survey", lang, ctx)
    for part, value in parts.items():
        assert "None" not in value
        assert REFERENCE_LABEL[lang] not in value, f"survey.{lang} {part} names a reference the walk-in never had"
    for part in ("text", "html"):
        assert ctx["ticket_number"] in parts[part] and ctx["feedback_url"] in parts[part]


@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule"])
@pytest.mark.parametrize("lang", LANGS)
def test_nothing_to_bring_leaves_no_empty_list(kind, lang):
    parts = render(kind, lang, context(kind, lang, what_to_bring=[]))
    assert BRING_HEADING[lang] not in parts["text"] and BRING_HEADING[lang] not in parts["html"]
    assert "<ul" not in parts["html"] and "•" not in parts["text"]
    assert "\n\n\n" not in parts["text"]


@pytest.mark.parametrize("lang, minutes, expected", [
    ("ar", 1, "دقيقة واحدة"), ("ar", 2, "دقيقتان"), ("ar", 5, "5 دقائق"), ("ar", 10, "10 دقائق"),
    ("ar", 15, "15 دقيقة"), ("ar", 30, "30 دقيقة"), ("en", 1, "1 minute"), ("en", 30, "30 minutes"),
])
def test_duration_reads_naturally(lang, minutes, expected):
    parts = render("confirmation", lang, context("confirmation", lang, duration_minutes=minutes))
    assert expected in parts["text"] and expected in parts["html"]
    if lang == "en" and minutes == 1:
        assert "1 minutes" not in parts["text"]


@every_email
def test_plain_text_parts_keep_values_as_written_and_html_escapes_them(kind, lang):
    name = "Seán O'Neill & <b>Co</b>" if lang == "en" else "مريم <b>الدوسري</b> & أخواتها"
    ctx = context(kind, lang, name=name)
    parts = render(kind, lang, ctx)
    assert name in parts["text"] and ctx["help_url"] in parts["text"]
    assert str(escape(name)) in parts["html"] and "<b>" not in parts["html"]
    assert str(escape(ctx["help_url"])) in parts["html"] and "&amp;topic=" in parts["html"]
    assert all(isinstance(parts[part], str) for part in parts)


@pytest.mark.parametrize("kind, lang, missing", [
    (kind, lang, key) for kind in KINDS for lang in LANGS for key in sorted(REQUIRED[kind])])
def test_a_missing_variable_fails_the_render(kind, lang, missing):
    ctx = context(kind, lang)
    del ctx[missing]
    with pytest.raises(jinja2.UndefinedError):
        render(kind, lang, ctx)


# -- messages.py: what the service passes the templates, and what it makes of them ------------------------------

BRANCH = {"name_en": "Isa Town branch", "name_ar": "فرع مدينة عيسى",
          "services": {"passport-renewal": {"name_en": "Passport renewal", "name_ar": "تجديد جواز السفر",
                                            "duration_minutes": 20}}}
START = datetime(2026, 12, 7, 6, 20, tzinfo=UTC)   # Monday 09:20 in Bahrain
PUBLIC_URL = "https://mawaeed.example.bh/"


@pytest.mark.parametrize("lang, expected", [("en", "Monday 7 December 2026"), ("ar", "الاثنين 7 ديسمبر 2026")])
def test_dates_are_written_in_the_persons_language_on_bahrains_calendar(lang, expected):
    assert messages.local_date(START, lang) == expected
    assert messages.local_date(datetime(2026, 12, 6, 21, 30, tzinfo=UTC), lang) == expected  # 00:30 on Monday


def test_the_context_is_what_the_templates_need_in_the_persons_language():
    values = messages.context("reschedule", "ar", BRANCH, "passport-renewal", "فاطمة", "K7MX-9QRD", START,
                              {"previous_start": (START - timedelta(days=1)).isoformat()}, PUBLIC_URL)
    assert {key: values[key] for key in ("branch_name", "service_name", "duration_minutes", "time", "previous_time",
                                         "booking_url", "what_to_bring")} == {
        "branch_name": "فرع مدينة عيسى", "service_name": "تجديد جواز السفر", "duration_minutes": 20,
        "time": "09:20", "previous_time": "09:20", "booking_url": "https://mawaeed.example.bh/manage?reference=K7MX-9QRD",
        "what_to_bring": messages.WHAT_TO_BRING["ar"]}
    assert values["previous_date"] == "الأحد 6 ديسمبر 2026"
    assert values["help_url"] == "https://mawaeed.example.bh/help"  # the pages' help, whatever the URL's slash
    assert REQUIRED["reschedule"] <= set(values)


def test_a_walk_ins_context_has_no_booking_link_nor_time():
    values = messages.context("called", "en", BRANCH, "passport-renewal", "", None, None,
                              {"ticket_number": "P-014", "counter": "5"}, PUBLIC_URL)
    assert values["booking_url"] == PUBLIC_URL and "time" not in values and "previous_date" not in values
    assert values["help_url"] == "https://mawaeed.example.bh/help"
    assert (values["ticket_number"], values["counter"], values["feedback_url"]) == ("P-014", "5", "")


def test_a_rendered_message_has_every_part_and_an_id_that_its_key_decides():
    values = messages.context("confirmation", "en", BRANCH, "passport-renewal", "Maria", "K7MX-9QRD", START, {},
                              PUBLIC_URL)
    message = messages.render(ENV, "confirmation", "email", "en", "m@example.com", values, "confirmation:email:K7MX")
    assert (message.kind, message.channel, message.language, message.to) == ("confirmation", "email", "en",
                                                                             "m@example.com")
    assert all([message.subject, message.text, message.html, message.sms]) and "K7MX-9QRD" in message.sms
    again = messages.render(ENV, "confirmation", "email", "en", "m@example.com", values, "confirmation:email:K7MX")
    other = messages.render(ENV, "confirmation", "sms", "en", "+97333001122", values, "confirmation:sms:K7MX")
    assert again.message_id == message.message_id != other.message_id
    assert re.fullmatch(r"<[0-9a-f]{32}@mawaeed>", message.message_id)


@pytest.mark.parametrize("cancelled", [False, True])
def test_the_calendar_file_holds_the_appointment_in_utc(cancelled):
    stamp = START - timedelta(days=2)
    ics = messages.calendar_file("K7MX-9QRD", BRANCH, "passport-renewal", START, "en", stamp, sequence=7,
                                 cancelled=cancelled)   # the service passes instants as it stores them, in UTC
    assert b"DTSTART:20261207T062000Z" in ics and b"DTEND:20261207T064000Z" in ics
    calendar = Calendar.from_ical(ics)
    [event] = calendar.walk("VEVENT")
    assert str(calendar["method"]) == ("CANCEL" if cancelled else "PUBLISH")
    assert (str(event["uid"]), event["sequence"], str(event["status"])) == (
        "K7MX-9QRD@mawaeed", 7, "CANCELLED" if cancelled else "CONFIRMED")
    assert (event.decoded("dtstart"), event.decoded("dtend")) == (START, START + timedelta(minutes=20))
    assert (str(event["summary"]), str(event["location"])) == ("Passport renewal (K7MX-9QRD)", "Isa Town branch")


# -- the centre's street address ------------------------------------------------------------------------------

ADDRESSED = {**BRANCH, "address_en": "Building 123, Road 613, Block 806, Isa Town",
             "address_ar": "مبنى 123، طريق 613، مجمع 806، مدينة عيسى"}
ADDRESS_LABEL = {"ar": "العنوان", "en": "Address"}


@pytest.mark.parametrize("lang, location", [
    ("en", "Isa Town branch, Building 123, Road 613, Block 806, Isa Town"),
    ("ar", "فرع مدينة عيسى، مبنى 123، طريق 613، مجمع 806، مدينة عيسى")])
def test_the_calendar_files_location_is_the_centre_and_its_address_in_the_persons_language(lang, location):
    ics = messages.calendar_file("K7MX-9QRD", ADDRESSED, "passport-renewal", START, lang, START)
    assert b"LOCATION:" in ics
    [event] = Calendar.from_ical(ics).walk("VEVENT")
    assert str(event["location"]) == location


@pytest.mark.parametrize("lang", LANGS)
def test_the_context_gives_the_address_in_the_persons_language_and_nothing_for_a_branch_without_one(lang):
    values = messages.context("confirmation", lang, ADDRESSED, "passport-renewal", "Maria", "K7MX-9QRD", START, {},
                              PUBLIC_URL)
    assert values["address"] == ADDRESSED[f"address_{lang}"]
    message = messages.render(ENV, "confirmation", "email", lang, "m@example.com", values, "k")
    assert ADDRESSED[f"address_{lang}"] in message.text and ADDRESSED[f"address_{lang}"] in message.html
    assert ADDRESSED[f"address_{lang}"] in message.sms
    for unknown in (BRANCH, {**BRANCH, "address_en": "", "address_ar": ""}):   # registered before addresses
        values = messages.context("confirmation", lang, unknown, "passport-renewal", "Maria", "K7MX-9QRD", START,
                                  {}, PUBLIC_URL)
        assert values["address"] == ""
        assert ADDRESS_LABEL[lang] not in messages.render(ENV, "confirmation", "email", lang, "m@example.com",
                                                          values, "k").text


@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule"])
@pytest.mark.parametrize("lang", LANGS)
def test_no_address_leaves_no_empty_line_or_row(kind, lang):
    with_it = render(kind, lang, context(kind, lang))
    without = render(kind, lang, context(kind, lang, address=""))
    for part in ("text", "html"):
        assert ADDRESS_LABEL[lang] in with_it[part] and ADDRESS_LABEL[lang] not in without[part]
    assert "()" not in without["sms"] and "\n\n\n" not in without["text"]
    assert without["text"].count("\n") == with_it["text"].count("\n") - 1
    assert without["html"].count("<tr>") == with_it["html"].count("<tr>") - 1


@pytest.mark.parametrize("kind", ["confirmation", "reminder"])
@pytest.mark.parametrize("lang", LANGS)
def test_the_sms_drops_the_address_rather_than_grow_past_its_limit(kind, lang):
    longest = render(kind, lang, context(kind, lang, **{k: v for k, v in LONGEST[lang].items()
                                                        if k in context(kind, lang)}))
    assert LONGEST[lang]["address"] not in longest["sms"] and LONGEST[lang]["branch_name"] in longest["sms"]
    assert LONGEST[lang]["address"] in longest["text"]   # the email still says where
    assert SAMPLES[lang]["address"] in render(kind, lang, context(kind, lang))["sms"]


def test_the_emailed_calendar_file_says_its_charset_so_an_arabic_location_arrives_as_written():
    from email import message_from_bytes, policy
    from services.notifications.channels import as_email
    values = messages.context("confirmation", "ar", ADDRESSED, "passport-renewal", "فاطمة", "K7MX-9QRD", START, {},
                              PUBLIC_URL)
    message = messages.render(ENV, "confirmation", "email", "ar", "f@example.com", values, "k")
    message.attachments.append(("appointment.ics", "text/calendar",
                                messages.calendar_file("K7MX-9QRD", ADDRESSED, "passport-renewal", START, "ar", START)))
    received = message_from_bytes(as_email(message, "no-reply@example.com").as_bytes(), policy=policy.default)
    [ics] = [p for p in received.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics.get_content_charset() == "utf-8"
    [event] = Calendar.from_ical(ics.get_content().encode()).walk("VEVENT")
    assert str(event["location"]) == "فرع مدينة عيسى، مبنى 123، طريق 613، مجمع 806، مدينة عيسى"


WHY = {"ar": {"service_withdrawn": "لم يعد الفرع يقدّم هذه الخدمة", "branch_retired": "أُغلق الفرع نهائيًا",
              "holiday": "الفرع مغلق في ذلك اليوم (اليوم الوطني)"},
       "en": {"service_withdrawn": "no longer offers this service", "branch_retired": "has closed down",
              "holiday": "closed on that day (National Day)"}}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("reason", ["service_withdrawn", "branch_retired", "holiday"])
def test_a_cancellation_by_the_centre_says_why_in_the_persons_language(lang, reason):
    holiday = {"ar": "اليوم الوطني", "en": "National Day"}[lang]
    parts = render("cancellation", lang, context("cancellation", lang, reason=reason, holiday_name=holiday))
    for part in ("text", "html"):
        assert WHY[lang][reason] in parts[part], (part, parts[part])
    assert "If you did not ask" not in parts["text"] and "إذا لم يكن هذا الإلغاء بطلب منك" not in parts["text"]
    plain = render("cancellation", lang, context("cancellation", lang))
    longest = render("cancellation", lang, context("cancellation", lang, **LONGEST[lang], reason=reason,
                                                   holiday_name=holiday))
    assert parts["sms"] != plain["sms"] and len(longest["sms"]) <= SMS_LIMIT[lang]
    assert not any(WHY[lang][reason] in plain[part] for part in ("text", "html"))
