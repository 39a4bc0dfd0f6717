"""Field types shared by the contracts."""
import re

from marshmallow import ValidationError, fields, validate

# ASCII digits only, and \Z rather than $ (which also matches before a trailing newline): a CPR written
# with other digits would otherwise be another person to the per-person rules.
CPR_PATTERN = re.compile(r"[0-9]{2}(0[1-9]|1[0-2])[0-9]{5}\Z")


def validate_cpr(value: str) -> None:
    """A CPR is 9 digits, the first four YYMM of birth. No public check digit is known: format only."""
    if not isinstance(value, str) or not CPR_PATTERN.match(value):
        raise ValidationError("A CPR number is 9 digits starting with the year and month of birth (YYMM).")


def validate_cpr_or_erased(value: str) -> None:
    """In a stored event a CPR may read "[erased]": its person was forgotten (shared/vault.py)."""
    if value != "[erased]":
        validate_cpr(value)


def Id(**kw):
    return fields.String(required=True, validate=validate.Regexp(r"[a-z0-9][a-z0-9-]{0,63}\Z"), **kw)


def Name(**kw):
    return fields.String(required=True, validate=validate.Length(min=1, max=200), **kw)


Instant = fields.AwareDateTime  # always with an offset; stored and sent in UTC
