"""The Korean catalogue is complete, compiled and faithful to its English.

The strings are extracted in Python (Babel, with Django's own template-to-gettext conversion), so
the check runs on a fresh machine without GNU gettext; `makemessages` finds the same strings.
"""

import gettext
import io
import re
from pathlib import Path

import polib
import pytest
from babel.messages.extract import extract
from django.conf import settings
from django.utils.translation.template import templatize

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "ko" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
# Django's gettext functions as xgettext is told of them by makemessages.
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdif]|%[sdif]|\{[a-z_0-9]*\}")


def _source_files() -> list[Path]:
    files = sorted((ROOT / "batchjobs").rglob("*.py")) + sorted((ROOT / "config").rglob("*.py"))
    files = [path for path in files if "migrations" not in path.parts]
    return files + sorted((ROOT / "templates").rglob("*.html"))


def _marked_strings() -> dict[tuple[str | None, str], str]:
    """(context, msgid) -> where it was marked, for every marked string of the product."""
    found: dict[tuple[str | None, str], str] = {}
    for path in _source_files():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            # Django's gettext calls amid filler for the template's other text; inside
            # brackets Python's tokenizer ignores the filler's indentation.
            text = "(\n" + templatize(text, origin=str(path)) + "\n)"
        for lineno, message, _comments, context in extract(
            "python", io.BytesIO(text.encode("utf-8")), keywords=KEYWORDS
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault((context, msgid), f"{path.relative_to(ROOT)}:{lineno}")
    return found


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    return polib.pofile(str(CATALOGUE))


def test_every_marked_string_has_a_korean_translation(catalogue: polib.POFile) -> None:
    translated = {
        (entry.msgctxt, entry.msgid)
        for entry in catalogue
        if not entry.obsolete and "fuzzy" not in entry.flags and entry.translated()
    }
    marked = _marked_strings()
    assert len(marked) > 300, "the extraction found too few strings to be looking at the product"
    missing = sorted(f"{where}: {msgid!r}" for key, where in marked.items() if key not in translated
                     for msgid in [key[1]])  # fmt: skip
    assert not missing, f"{len(missing)} strings without Korean:\n" + "\n".join(missing[:60])


def test_compiled_catalogue_matches_its_source(catalogue: polib.POFile) -> None:
    with COMPILED.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    expected: dict = {}
    for entry in catalogue.translated_entries():
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                expected[(key, int(index))] = text
        else:
            expected[key] = entry.msgstr
    compiled = {key: value for key, value in compiled.items() if key != ""}  # the header
    assert compiled == expected, "locale/ko/LC_MESSAGES/django.mo is stale: run `make messages`"


def test_translations_keep_every_placeholder(catalogue: polib.POFile) -> None:
    broken = []
    for entry in catalogue.translated_entries():
        # Korean has one form; it says what the English plural says.
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        broken += [entry.msgid for text in texts if sorted(PLACEHOLDER.findall(text)) != wanted]
    assert not broken, "placeholders differ from the English in:\n" + "\n".join(broken)
