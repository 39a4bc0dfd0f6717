"""What logs, events and answers may show of a person: masks that tell messages apart without the whole
identifier, and the marker that stands where a forgotten person's field was. Pure: no database, no cryptography."""

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
