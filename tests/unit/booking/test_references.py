"""Booking references (services/booking/references.py): what people read out, type and show at a kiosk."""
import re

import pytest

from services.booking import references


def test_reference_alphabet_has_no_ambiguous_characters():
    assert not set("0O1IL2Z5S8BUV") & set(references.REFERENCE_ALPHABET)
    assert len(set(references.REFERENCE_ALPHABET)) == len(references.REFERENCE_ALPHABET)
    assert all(ch.isascii() and (ch.isdigit() or ch.isupper()) for ch in references.REFERENCE_ALPHABET)


def test_new_reference_format_and_spread():
    pattern = re.compile(rf"^[{references.REFERENCE_ALPHABET}]{{4}}-[{references.REFERENCE_ALPHABET}]{{4}}$")
    codes = [references.new_reference() for _ in range(2000)]
    assert all(pattern.match(code) for code in codes), [c for c in codes if not pattern.match(c)][:5]
    assert len(set(codes)) > 1990   # 23**8 codes: collisions among 2000 are all but impossible
    used = set("".join(codes).replace("-", ""))
    assert used == set(references.REFERENCE_ALPHABET)   # every character of the alphabet, and only those, is drawn


@pytest.mark.parametrize("typed", ["AC3D-9FGH", "ac3d-9fgh", "AC3D9FGH", "ac3d9fgh", " ac3d 9fgh ",
                                   "AC3D - 9FGH", "Ac3D9fGh\n", "ac 3d 9f gh"])
def test_normalise_reference_accepts_what_people_type(typed):
    assert references.normalise_reference(typed) == "AC3D-9FGH"


def test_normalise_reference_is_idempotent_on_new_references():
    for _ in range(50):
        code = references.new_reference()
        assert references.normalise_reference(code) == code
        assert references.normalise_reference(code.lower().replace("-", "")) == code


@pytest.mark.parametrize("typed, expected", [("ac3d-9fg", "AC3D-9FG"), ("ac3d9fghj", "AC3D9FGHJ"), ("", "")])
def test_normalise_reference_leaves_wrong_lengths_unmatched(typed, expected):
    assert references.normalise_reference(typed) == expected
