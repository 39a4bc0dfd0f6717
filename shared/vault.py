"""Personal data in the logs, and forgetting a person without rewriting history (crypto-shredding).

Personal fields of an event (a CPR, a name, a mobile number, an email) are stored encrypted with a key of
their own person, kept in the service's `person_keys` table. Erasing a person deletes that key: the events stay,
every count and position stays, and from then on every read (replay, export, feed, relay) shows those fields as
"[erased]". A person is known by a subject id, a keyed hash of their CPR (MAWAEED_SUBJECT_KEY), the same in every
service, so a PersonErased event can name them without naming them.

A sealed field reads "enc:<subject>:<token>". New tokens are "v2.<base64(nonce, ciphertext and tag)>":
AES-256-GCM under a key derived from the person's stored key, with the subject as associated data (a token opens
only as the person its prefix names; the field is not bound). Tokens written before that are Fernet tokens (they
begin "gAAAA", never "v2."), still opened with the stored key itself. AES-GCM is one C call a field where Fernet is an
HMAC, a CBC pass and a clock check in Python (about 46 µs a field): that is most of a booking replay's time.
Both kinds die with the stored key, so erasing a person is still deleting one row.
"""
import binascii
import hashlib
import hmac
import os

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.clock import clock, to_db
from shared.masking import ERASED

PREFIX = "enc:"
AES_GCM = "v2."  # the version prefix of a token sealed with AES-GCM; a Fernet token begins "gAAAA"
NONCE_BYTES = 12
_AES_KEY_LABEL = b"mawaeed seal aes-256-gcm\0"
# event type -> (path of the CPR, paths of every personal field)
PERSONAL_FIELDS = {
    "booking.SlotBooked": ("person.cpr", ("person.cpr", "person.name", "person.mobile", "person.email")),
    "queue.CustomerCheckedIn": ("cpr", ("cpr",)),
}
_SUBJECT_KEY = os.environ.get("MAWAEED_SUBJECT_KEY", "embedded-only-subject-key")
# the same, with each path split once: (CPR path, personal paths) as tuples of keys
_PATHS = {type_: (tuple(cpr.split(".")), tuple(tuple(p.split(".")) for p in paths))
          for type_, (cpr, paths) in PERSONAL_FIELDS.items()}
# and as (the path of the object holding a type's personal fields, their names): a type's are side by side
_HOLDERS = {type_: (paths[0][:-1], tuple(p[-1] for p in paths)) for type_, (_, paths) in _PATHS.items()}
assert all(p[:-1] == _HOLDERS[t][0] for t, (_, paths) in _PATHS.items() for p in paths), "one holder a type"


def subject_of(cpr: str) -> str:
    return hmac.new(_SUBJECT_KEY.encode(), cpr.encode(), hashlib.sha256).hexdigest()[:24]


def key_table(metadata: sa.MetaData) -> None:
    sa.Table("person_keys", metadata,
             sa.Column("subject", sa.String(24), primary_key=True),
             sa.Column("key", sa.String(64), nullable=False),
             sa.Column("created_at", sa.DateTime, nullable=False))


def _get(payload: dict, path: tuple):
    node = payload
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(payload: dict, path: tuple, value) -> None:
    *parents, last = path
    node = payload
    for part in parents:
        node = node[part]
    node[last] = value


def _copy(payload: dict, paths) -> dict:
    """A copy deep enough to change the personal fields without touching the caller's payload."""
    copy = dict(payload)
    for path in paths:
        parents = path[:-1]
        node = copy
        for part in parents:
            node[part] = dict(node[part])
            node = node[part]
    return copy


def sealed_subjects(stored_payloads) -> set[str]:
    """The people whose keys opening these stored (JSON) payloads needs: a sealed field reads "enc:<subject>:..."."""
    marker = f'"{PREFIX}'
    return {text[i + len(marker):i + len(marker) + 24]
            for text in stored_payloads for i in [text.find(marker)] if i >= 0}


# A person's key, made if missing, in one statement instead of a read and an insert (the same SQL on PostgreSQL
# and SQLite; the table is in the connection's schema): the no-op update returns the key the person has.
_KEY_UPSERT = sa.text("INSERT INTO person_keys (subject, key, created_at) VALUES (:subject, :key, :created_at) "
                      "ON CONFLICT (subject) DO UPDATE SET key = person_keys.key RETURNING key") \
    .bindparams(sa.bindparam("created_at", type_=sa.DateTime))
_KEY_QUERIES = {}  # person_keys table -> its query by subject, built once (a booking reads a key each time)


def _key_query(table: sa.Table) -> sa.Select:
    if table not in _KEY_QUERIES:
        _KEY_QUERIES[table] = sa.select(table.c.key).where(table.c.subject == sa.bindparam("subject"))
    return _KEY_QUERIES[table]


class PersonKey:
    """One person's key as stored (a Fernet key: 32 random bytes, base64url) and the two ciphers made of it:
    AES-256-GCM for what is sealed now, under a key derived from it for that use only; Fernet, made when first
    needed, for what was sealed before."""

    def __init__(self, stored: str, subject: str):
        self.stored, self.subject = stored, subject
        self.associated = subject.encode()
        # SHA-256 of a label and the stored key (its 32 random bytes in base64url): a key for this use only
        self.aes = AESGCM(hashlib.sha256(_AES_KEY_LABEL + stored.encode()).digest())
        self._fernet = None

    def seal(self, value: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self.aes.encrypt(nonce, value.encode(), self.associated)
        return f"{PREFIX}{self.subject}:{AES_GCM}{binascii.b2a_base64(sealed, newline=False).decode()}"

    def open(self, token: str) -> str:
        """The value of a token (without "enc:<subject>:"); InvalidToken when it was not sealed with this key
        or was changed since."""
        if token.startswith(AES_GCM):
            try:
                sealed = binascii.a2b_base64(token[len(AES_GCM):])  # not base64's wrappers: this is the hot path
                return self.aes.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self.associated).decode()
            except (InvalidTag, binascii.Error, ValueError):  # ValueError: too short to hold a nonce and tag
                raise InvalidToken from None
        if self._fernet is None:
            self._fernet = Fernet(self.stored.encode())
        return self._fernet.decrypt(token.encode()).decode()


class Vault:
    """The person keys of one service, used inside a transaction."""

    def __init__(self, conn: sa.Connection, table: sa.Table):
        self.conn, self.table = conn, table
        self._keys = {}

    def _key(self, subject: str, create: bool) -> PersonKey | None:
        if subject not in self._keys:
            if create:  # one statement: a new key, or the one the person has (a conflict keeps it)
                key = self.conn.execute(_KEY_UPSERT, {"subject": subject, "key": Fernet.generate_key().decode(),
                                                      "created_at": to_db(clock.now())}).scalar_one()
            else:
                key = self.conn.execute(_key_query(self.table), {"subject": subject}).scalar()
            self._keys[subject] = PersonKey(key, subject) if key else None
        return self._keys[subject]

    def preload(self, subjects) -> None:
        """Read the keys of many people in one query (a replay opening a page of events)."""
        wanted = set(subjects) - self._keys.keys()
        if wanted:
            found = dict(self.conn.execute(sa.select(self.table.c.subject, self.table.c.key)
                                           .where(self.table.c.subject.in_(wanted))).all())
            self._keys.update({s: PersonKey(found[s], s) if s in found else None for s in wanted})

    def seal(self, type_: str, payload: dict) -> dict:
        """The payload as stored: its personal fields encrypted under the person's key."""
        if type_ not in _PATHS:
            return payload
        cpr_path, paths = _PATHS[type_]
        key = self._key(subject_of(_get(payload, cpr_path)), create=True)
        sealed = _copy(payload, paths)
        for path in paths:
            value = _get(payload, path)
            if value is not None:
                _set(sealed, path, key.seal(value))
        return sealed

    def open(self, type_: str, payload: dict, fresh: bool = False) -> dict:
        """The payload as read: personal fields decrypted, or "[erased]" when the person's key is gone (or the
        sealed value was changed: it does not open). `fresh`: the payload was just parsed and is nobody else's,
        so it is opened in place rather than copied (a replay opens hundreds of thousands)."""
        holder = _HOLDERS.get(type_)
        if holder is None:
            return payload
        parents, names = holder
        opened = node = payload if fresh else dict(payload)
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                return opened
            node[part] = node = child if fresh else dict(child)
        for name in names:
            value = node.get(name)
            if value.__class__ is str and value.startswith(PREFIX):
                subject, _, token = value[len(PREFIX):].partition(":")
                key = self._keys[subject] if subject in self._keys else self._key(subject, create=False)
                try:
                    node[name] = key.open(token) if key else ERASED
                except InvalidToken:
                    node[name] = ERASED
        return opened

    def forget(self, subject: str) -> bool:
        """Delete a person's key: everything sealed with it can no longer be read by anyone."""
        self._keys.pop(subject, None)
        return self.conn.execute(self.table.delete().where(self.table.c.subject == subject)).rowcount > 0


def personal(column: sa.Column) -> sa.Column:
    """Mark a projection's column as personal: `scrub` overwrites it when its person is forgotten."""
    column.info["personal"] = True
    return column


def scrub(uow, table: sa.Table, where) -> int:
    """Overwrite the personal columns of the rows `where` picks with "[erased]", as the log now reads them (a
    field that was empty stays empty). Returns the rows changed."""
    values = {c.name: sa.case((c.is_(None), None), else_=ERASED) if c.nullable else ERASED
              for c in table.columns if c.info.get("personal")}
    return uow.execute(table.update().where(where).values(values)).rowcount


def forget_person(uow, subject: str, *tables: sa.Table) -> None:
    """PersonErased, as every service applies it: this service's key of the person goes, and so do their
    personal fields in `tables` (each has a `subject` column)."""
    uow.store.vault.forget(subject)
    for table in tables:
        scrub(uow, table, table.c.subject == subject)
