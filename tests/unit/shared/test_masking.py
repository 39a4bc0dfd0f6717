"""What may be shown of a person (shared/masking.py): masks and pseudonyms."""
import json

from shared.masking import mask_cpr, mask_email, mask_phone, pseudonym, pseudonymise

PERSON = {"cpr": "900112345", "name": "فاطمة علي", "mobile": "+97333001122", "email": "f@example.com",
          "language": "ar"}


def test_pseudonyms_are_keyed_stable_and_reach_nested_fields():
    payload = {"reference": "AC3D-9FGH", "person": PERSON, "items": [{"email": "x@example.com"}]}
    hidden = pseudonymise(payload, "k1")
    assert hidden["reference"] == "AC3D-9FGH" and hidden["person"]["language"] == "ar"
    assert hidden["person"]["cpr"] == pseudonym("900112345", "k1", "cpr") == pseudonymise(payload, "k1")["person"]["cpr"]
    assert hidden["person"]["cpr"] != pseudonymise(payload, "k2")["person"]["cpr"]
    assert "900112345" not in json.dumps(hidden, ensure_ascii=False) and "f@example.com" not in json.dumps(hidden)
    assert "فاطمة" not in json.dumps(hidden, ensure_ascii=False) and "x@example.com" not in json.dumps(hidden)


def test_masks_keep_enough_to_tell_apart_and_no_more():
    assert mask_cpr("900112345") == "90*****45" and mask_cpr(None) == "***"
    assert mask_phone("+97333001122") == "+973****22" and mask_phone("12") == "***"
    assert mask_email("fatima@example.com") == "f***@example.com" and mask_email("nobody") == "***"
