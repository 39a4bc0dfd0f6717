"""Booking references: what people read out over the phone, type from paper, and show at a kiosk."""
import secrets

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V: nothing that can be misread for another character.
REFERENCE_ALPHABET = "34679ACDEFGHJKMNPQRTWXY"
REFERENCE_LENGTH = 8


def new_reference() -> str:
    code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalise_reference(text: str) -> str:
    """Accept what people type: any case, with or without the dash or spaces."""
    code = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{code[:4]}-{code[4:]}" if len(code) == REFERENCE_LENGTH else text.upper()
