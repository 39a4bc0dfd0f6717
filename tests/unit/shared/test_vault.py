"""Sealing personal fields: new seals are AES-GCM, seals made with Fernet before still open, a forgotten key
makes both unreadable, and a changed sealed value does not open."""
import base64

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from shared import vault
from shared.masking import ERASED

CPR = "900112345"
PERSON = {"cpr": CPR, "name": "فاطمة علي", "mobile": "+97333001122", "email": "f@example.com", "language": "ar"}
BOOKED = {"reference": "AC3D-9FG1", "person": PERSON}


@pytest.fixture
def conn():
    metadata = sa.MetaData()
    vault.key_table(metadata)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        metadata.create_all(connection)
        yield connection, metadata.tables["person_keys"]
    engine.dispose()


def fresh(conn) -> vault.Vault:
    """A vault of a new transaction: no key held from before."""
    return vault.Vault(*conn)


def fernet_sealed(conn) -> dict:
    """BOOKED as the vault sealed it before AES-GCM: Fernet tokens under the person's stored key."""
    connection, table = conn
    subject = vault.subject_of(CPR)
    key = Fernet.generate_key()
    connection.execute(table.insert().values(subject=subject, key=key.decode(), created_at=sa.func.now()))
    fernet = Fernet(key)
    person = {k: f"{vault.PREFIX}{subject}:{fernet.encrypt(v.encode()).decode()}" if k != "language" else v
              for k, v in PERSON.items()}
    return {**BOOKED, "person": person}


def test_new_seals_are_aes_gcm_under_the_persons_subject_and_open_again(conn):
    sealed = fresh(conn).seal("booking.SlotBooked", BOOKED)
    subject = vault.subject_of(CPR)
    for field in ("cpr", "name", "mobile", "email"):
        value = sealed["person"][field]
        assert value.startswith(f"{vault.PREFIX}{subject}:{vault.AES_GCM}")
        assert PERSON[field] not in value
    assert sealed["person"]["language"] == "ar" and BOOKED["person"]["cpr"] == CPR  # the caller's is untouched
    assert sealed["person"]["cpr"] != fresh(conn).seal("booking.SlotBooked", BOOKED)["person"]["cpr"]  # nonces
    assert fresh(conn).open("booking.SlotBooked", sealed) == BOOKED


def test_fernet_seals_made_before_still_open(conn):
    old = fernet_sealed(conn)
    assert old["person"]["cpr"].split(":", 2)[2].startswith("gAAAA")
    assert fresh(conn).open("booking.SlotBooked", old) == BOOKED
    again = fresh(conn).seal("booking.SlotBooked", BOOKED)  # the same person's key seals new fields with AES-GCM
    assert again["person"]["name"].split(":", 2)[2].startswith(vault.AES_GCM)
    assert fresh(conn).open("booking.SlotBooked", again) == BOOKED


def test_a_forgotten_key_makes_both_kinds_unreadable(conn):
    old = fernet_sealed(conn)
    new = fresh(conn).seal("booking.SlotBooked", BOOKED)
    assert fresh(conn).forget(vault.subject_of(CPR))
    erased = {**PERSON, "cpr": ERASED, "name": ERASED, "mobile": ERASED, "email": ERASED}
    for sealed in (old, new):
        assert fresh(conn).open("booking.SlotBooked", sealed) == {**BOOKED, "person": erased}


def tampered(value: str) -> str:
    """The sealed value with one bit of its ciphertext flipped."""
    head, token = value.rsplit(vault.AES_GCM, 1)
    raw = bytearray(base64.b64decode(token))
    raw[vault.NONCE_BYTES] ^= 1
    return f"{head}{vault.AES_GCM}{base64.b64encode(bytes(raw)).decode()}"


def test_a_changed_sealed_value_is_refused(conn):
    sealed = fresh(conn).seal("booking.SlotBooked", BOOKED)
    person = dict(sealed["person"])
    person["name"] = tampered(person["name"])
    person["mobile"] = person["mobile"][:-6]  # cut short
    opened = fresh(conn).open("booking.SlotBooked", {**sealed, "person": person})["person"]
    assert opened["name"] == ERASED and opened["mobile"] == ERASED
    assert opened["cpr"] == CPR and opened["email"] == PERSON["email"]


def test_a_seal_moved_to_another_person_does_not_open(conn):
    """A sealed value is bound to its person (their key, their subject as associated data)."""
    mine = fresh(conn).seal("booking.SlotBooked", BOOKED)
    theirs = fresh(conn).seal("booking.SlotBooked", {**BOOKED, "person": {**PERSON, "cpr": "850612345"}})
    their_subject = vault.subject_of("850612345")
    token = mine["person"]["name"].split(":", 2)[2]
    moved = {**theirs, "person": {**theirs["person"], "name": f"{vault.PREFIX}{their_subject}:{token}"}}
    assert fresh(conn).open("booking.SlotBooked", moved)["person"]["name"] == ERASED
