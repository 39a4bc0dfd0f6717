"""What logs, events and answers may show of a person: masks that tell messages apart without the whole
identifier, pseudonyms that join one person's events without naming them, and the marker that stands where a
forgotten person's field was. Pure: no database, no cryptography library."""
import hashlib
import hmac

ERASED = "[erased]"  # what a personal field reads once its person was forgotten (shared/vault.py)


def mask_cpr(cpr: str | None) -> str:
    return f"{cpr[:2]}*****{cpr[-2:]}" if cpr and len(cpr) >= 6 else "***"


def mask_phone(number: str | None) -> str:
    return f"{number[:4]}****{number[-2:]}" if number and len(number) >= 8 else "***"


def mask_email(address: str | None) -> str:
    if not address or "@" not in address:
        return "***"
    user, _, domain = address.partition("@")
    return f"{user[:1]}***@{domain}"


def mask_recipient(channel: str, to: str) -> str:
    return mask_email(to) if channel == "email" else mask_phone(to)


# Pseudonyms: a keyed hash in place of a CPR, name or contact, so one person's events still join up across
# exports and feed pages made with the same key, while naming nobody (analysts' exports and feed).
PERSONAL_FIELDS = ("cpr", "name", "mobile", "email")


def pseudonym(value: str, key: str, field: str) -> str:
    digest = hmac.new(key.encode(), f"{field}:{value}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{field}-{digest}"


def pseudonymise(payload, key: str):
    if isinstance(payload, dict):
        return {k: (pseudonym(str(v), key, "cpr" if k == "cpr" else "contact") if v is not None else None)
                if k in PERSONAL_FIELDS else pseudonymise(v, key) for k, v in payload.items()}
    if isinstance(payload, list):
        return [pseudonymise(v, key) for v in payload]
    return payload
