"""Every text a person reads on the pages has its Arabic: each message id the templates use (extracted as
translators extract them, Babel with Jinja2's extractor) has a non-empty Arabic translation in the merged
catalogue the pages load, and the catalogues translators edit are well formed."""
import re
from collections import defaultdict
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.web.i18n import CATALOGUES, catalogue

WEB = Path(__file__).resolve().parents[3] / "services" / "web"
TEMPLATES = WEB / "templates"
# The options the pages' own Jinja2 environment renders with (services/web/pages.py), so the ids match.
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true", "newstyle_gettext": "true"}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def extracted() -> dict[str, list[str]]:
    """Every message id of the templates (a plural: its singular) -> where it is used."""
    found = defaultdict(list)
    for filename, line, message, _comments, _context in extract_from_dir(
            str(TEMPLATES), method_map=[("**.html", "jinja2.ext:babel_extract")],
            options_map={"**.html": JINJA}):
        singular = message[0] if isinstance(message, tuple) else message
        if singular:
            found[singular].append(f"{filename}:{line}")
    return found


def po_files() -> list[Path]:
    return sorted(CATALOGUES.glob("*/*.po"))


def test_the_templates_have_text_to_translate():
    assert len(extracted()) > 20, "the extractor found (almost) nothing: are the templates there?"


def test_every_text_of_the_templates_has_its_arabic():
    arabic = catalogue("ar")
    missing = []
    for msgid, where in sorted(extracted().items()):
        message = arabic.get(msgid)
        strings = message.string if message is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if message is None or not all(s and s.strip() for s in strings):
            missing.append(f"{msgid!r}  (used at {', '.join(where[:3])})")
    assert not missing, (f"{len(missing)} text(s) of the templates without an Arabic translation in "
                         f"services/web/translations/ar/*.po:\n  " + "\n  ".join(missing))


@pytest.mark.parametrize("path", po_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_catalogue_parses_and_has_no_fuzzy_entry(path):
    with path.open("rb") as po:
        parsed = read_po(po, locale=path.parent.name, abort_invalid=True)
    assert not parsed.fuzzy, f"{path.name}: the whole catalogue is marked fuzzy (its header)"
    fuzzy = [m.id for m in parsed if m.id and m.fuzzy]
    assert not fuzzy, f"{path.name}: fuzzy entries (gettext skips them, so they show in English): {fuzzy}"
    assert any(m.id for m in parsed), f"{path.name}: no messages"


@pytest.mark.parametrize("path", po_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_translation_keeps_the_placeholders(path):
    """A %(name)s missing from a translation loses what it shows; an extra one breaks the page."""
    with path.open("rb") as po:
        parsed = read_po(po, locale=path.parent.name)
    wrong = []
    for message in parsed:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            if string and not set(PLACEHOLDER.findall(string)) <= wanted:
                wrong.append(f"{message.id!r} -> {string!r}")
            elif string and len(ids) == 1 and set(PLACEHOLDER.findall(string)) != wanted:
                wrong.append(f"{message.id!r} -> {string!r}")
    assert not wrong, f"{path.name}: translations whose placeholders differ from their message id:\n  " + \
        "\n  ".join(wrong)


def test_a_text_translated_in_two_catalogues_is_translated_the_same():
    """The catalogues are merged in file order, so two different translations of one text mean one is lost."""
    seen, clashes = {}, []
    for path in po_files():
        with path.open("rb") as po:
            for message in read_po(po, locale=path.parent.name):
                if not message.id or not message.string:
                    continue
                key = (path.parent.name, message.id)
                if key in seen and seen[key][1] != message.string:
                    clashes.append(f"{message.id!r}: {seen[key][0]} says {seen[key][1]!r}, "
                                   f"{path.name} says {message.string!r}")
                seen.setdefault(key, (path.name, message.string))
    assert not clashes, "texts translated differently in two catalogues:\n  " + "\n  ".join(clashes)
