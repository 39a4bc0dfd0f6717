"""Single-use feedback tokens: an HMAC of the ticket id, so no secret is stored in any event or table.

The queue makes them; the notifications service, holding the same key (MAWAEED_FEEDBACK_KEY), can put the same link in its SMS.
A token is single-use because the visit's stream accepts one SatisfactionRated.
"""
import base64
import hashlib
import hmac


def token_for(ticket_id: str, key: str) -> str:
    mac = hmac.new(key.encode(), ticket_id.encode(), hashlib.sha256).digest()[:15]
    return f"{ticket_id}.{base64.urlsafe_b64encode(mac).decode()}"


def ticket_of(token: str, key: str) -> str | None:
    """The ticket a genuine token names; None for anything forged or garbled."""
    ticket_id, _, _ = token.partition(".")
    # bytes, not str: compare_digest refuses non-ASCII strings, and a garbled link is not a server error
    return ticket_id if ticket_id and hmac.compare_digest(token_for(ticket_id, key).encode(), token.encode()) else None


def link(ticket_id: str, key: str, public_url: str) -> dict:
    token = token_for(ticket_id, key)
    return {"token": token, "url": f"{public_url.rstrip('/')}/feedback/{token}"}
