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


# What a request may name as a day or an instant. Dates far outside the suite's life overflow the date arithmetic
# (0001-01-01 minus a day) or come back in a zone's local mean time (+03:22:20 before 1920, not RFC 3339), so
# requests are held to years 2000..2999; stored events keep plain Instant fields.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2999
OUT_OF_RANGE = f"A date between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31."


class Day(fields.Date):
    """A YYYY-MM-DD date in years 2000..2999."""
    default_error_messages = {"range": OUT_OF_RANGE}

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise self.make_error("range")
        return day


class Moment(fields.AwareDateTime):
    """An RFC 3339 instant with an offset, in years 2000..2999."""
    default_error_messages = {"range": OUT_OF_RANGE}

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise self.make_error("range")
        return moment
