"""Tokens of a visit's links: an HMAC of the ticket id, so no secret is stored in any event or table.

Two links are made from a ticket id, each under its own purpose so that one cannot stand in for the other:
- the feedback link (`/feedback/<token>`), single-use because the visit's stream accepts one SatisfactionRated;
- the live ticket link (`/t/<token>`, on the printed ticket's QR code), which shows the ticket's place in the line.
The queue makes them; the notifications service, holding the same key (MAWAEED_FEEDBACK_KEY), can put the same
feedback link in its SMS.
"""
import base64
import hashlib
import hmac

FEEDBACK, TICKET = "feedback", "ticket"
PATHS = {FEEDBACK: "feedback", TICKET: "t"}


def token_for(ticket_id: str, key: str, purpose: str = FEEDBACK) -> str:
    signed = ticket_id if purpose == FEEDBACK else f"{purpose}:{ticket_id}"  # feedback tokens predate purposes
    mac = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()[:15]
    return f"{ticket_id}.{base64.urlsafe_b64encode(mac).decode()}"


def ticket_of(token: str, key: str, purpose: str = FEEDBACK) -> str | None:
    """The ticket a genuine token names; None for anything forged or garbled."""
    ticket_id, _, _ = token.partition(".")
    # bytes, not str: compare_digest refuses non-ASCII strings, and a garbled link is not a server error
    return ticket_id if ticket_id and hmac.compare_digest(token_for(ticket_id, key, purpose).encode(),
                                                          token.encode()) else None


def link(ticket_id: str, key: str, public_url: str, purpose: str = FEEDBACK) -> dict:
    token = token_for(ticket_id, key, purpose)
    return {"token": token, "url": f"{public_url.rstrip('/')}/{PATHS[purpose]}/{token}"}
