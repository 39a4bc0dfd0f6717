"""Single-use feedback tokens (services/queue/feedback.py)."""
import pytest

from services.queue import feedback

TICKET_ID, KEY = "6f1c2a9e-3b7d-4d0e-9a51-0c2f8e4b7a13", "a-feedback-key"


def test_a_token_names_its_ticket():
    token = feedback.token_for(TICKET_ID, KEY)
    assert token.startswith(f"{TICKET_ID}.") and feedback.ticket_of(token, KEY) == TICKET_ID
    assert feedback.token_for(TICKET_ID, KEY) == token  # nothing stored: the same token again
    link = feedback.link(TICKET_ID, KEY, "https://mawaeed.example.bh/")
    assert link == {"token": token, "url": f"https://mawaeed.example.bh/feedback/{token}"}


def test_a_tampered_token_names_no_ticket():
    token = feedback.token_for(TICKET_ID, KEY)
    ticket_id, mac = token.split(".")
    other = "0" * 8 + TICKET_ID[8:]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (f"{other}.{mac}", f"{ticket_id}.{flipped}", token + "x", token[:-1], f"{ticket_id}.",
                   feedback.token_for(TICKET_ID, "another-key")):
        assert feedback.ticket_of(forged, KEY) is None, forged
    assert feedback.ticket_of(token, "another-key") is None


@pytest.mark.parametrize("garbage", ["", ".", "nonsense", "a.b.c", f".{TICKET_ID}", "   "])
def test_garbage_names_no_ticket(garbage):
    assert feedback.ticket_of(garbage, KEY) is None


@pytest.mark.parametrize("garbage", ["تذكرة-مزورة-١٢٣", f"{TICKET_ID}.é"])
def test_non_ascii_garbage_names_no_ticket(garbage):
    assert feedback.ticket_of(garbage, KEY) is None


def test_a_live_ticket_token_is_of_its_own_purpose():
    ticket = feedback.token_for(TICKET_ID, KEY, feedback.TICKET)
    assert ticket != feedback.token_for(TICKET_ID, KEY) and ticket.startswith(f"{TICKET_ID}.")
    assert feedback.ticket_of(ticket, KEY, feedback.TICKET) == TICKET_ID
    assert feedback.ticket_of(ticket, KEY) is None
    link = feedback.link(TICKET_ID, KEY, "https://mawaeed.example.bh/", feedback.TICKET)
    assert link == {"token": ticket, "url": f"https://mawaeed.example.bh/t/{ticket}"}
