"""Rendering a page: the template in the person's language (Arabic first, right to left), the language kept in a
cookie when chosen with ?lang=, and the static files (styles, scripts, fonts) served from this package."""
import mimetypes
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from shared.errors import NotFound
from services.web.i18n import LANGUAGES, language_of, translations

HERE = Path(__file__).parent
STATIC = HERE / "static"
YEAR = 365 * 24 * 3600


@lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(language), newstyle=True)
    return env


def render(request, template: str, status: int = 200, **context) -> Response:
    """The page `template` in the request's language; `context` as the template reads it."""
    language = language_of(request)
    other = "en" if language == "ar" else "ar"
    html = environment(language).get_template(template).render(
        lang=language, dir="rtl" if language == "ar" else "ltr", other_lang=other,
        other_lang_url=_with_lang(request, other), path=request.path, **context)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    if request.args.get("lang") in LANGUAGES:  # a chosen language is remembered
        response.set_cookie("lang", language, max_age=YEAR, httponly=True, samesite="Lax")
    return response


def _with_lang(request, language: str) -> str:
    args = request.args.to_dict()
    args["lang"] = language
    return request.path + "?" + "&".join(f"{k}={v}" for k, v in args.items() if k not in ("device",))


def static_file(name: str) -> Response:
    """A file of static/ (never outside it), cacheable for a day."""
    path = safe_join(str(STATIC), name)
    if path is None or not Path(path).is_file():
        raise NotFound("No such file.", message_ar="الملف غير موجود.")
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = Response(Path(path).read_bytes(), content_type=kind if not kind.startswith("text/")
                        else f"{kind}; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
