"""Page text in two languages: English in the templates (the message ids), Arabic in gettext catalogues that
translators edit (translations/ar/*.po, one per page family, merged at load). Arabic is the default."""
from functools import lru_cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("ar", "en")
DEFAULT = "ar"
CATALOGUES = Path(__file__).with_name("translations")


def catalogue(language: str) -> Catalog:
    """Every .po file of a language merged into one catalogue."""
    merged = Catalog(locale=language)
    for path in sorted((CATALOGUES / language).glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                if message.id:
                    merged[message.id] = message
    return merged


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    if language == "en":
        return NullTranslations()  # the templates are written in English
    compiled = BytesIO()
    write_mo(compiled, catalogue(language))
    compiled.seek(0)
    return Translations(compiled)


def language_of(request) -> str:
    """?lang= first (and remembered in a cookie by the page), then the cookie, else Arabic."""
    for found in (request.args.get("lang"), request.cookies.get("lang")):
        if found in LANGUAGES:
            return found
    return DEFAULT
