"""Bearer tokens, verified as shared/auth.py verifies them: real tokens signed with real keys, published over
HTTP by a test issuer (tests/support/oidc.py) or by the embedded development issuer."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import PUBLIC, IssuerKeys, Unauthenticated, Verifier, principal_from
from shared.issuer import DevelopmentIssuer, parse_ttl
from tests.support.oidc import TestIssuer


@pytest.fixture(scope="module")
def issuer():
    found = TestIssuer()
    yield found
    found.close()


@pytest.fixture
def verifier(issuer):
    return Verifier(issuer.url, "mawaeed", IssuerKeys(issuer.url))


def refused(verifier, token, why):
    with pytest.raises(Unauthenticated) as refusal:
        verifier.verify(token)
    assert why in refusal.value.message and refusal.value.status == 401 and refusal.value.code == "UNAUTHENTICATED"


def test_a_good_token_names_its_caller(issuer, verifier):
    caller = verifier.verify(issuer.token("clerk", branches=["npra-isa-town"], counter="5"))
    assert caller.roles == {"clerk"} and caller.branches == {"npra-isa-town"} and caller.counter == "5"
    assert caller.authenticated and not PUBLIC.authenticated


def test_expired_not_yet_valid_and_the_clock_skew_allowed(issuer, verifier):
    now = int(time.time())
    refused(verifier, issuer.token(exp=now - 61), "expired")
    refused(verifier, issuer.token(nbf=now + 120), "not valid yet")
    assert verifier.verify(issuer.token(exp=now - 30)).roles == {"clerk"}   # within 60 s of skew
    assert verifier.verify(issuer.token(nbf=now + 30)).roles == {"clerk"}


def test_wrong_audience_and_wrong_issuer(issuer, verifier):
    refused(verifier, issuer.token(aud="another-system"), "another audience")
    refused(verifier, issuer.token(iss="https://idp.example.org/realms/other"), "another issuer")


def test_a_missing_expiry_or_audience_is_refused(issuer, verifier):
    refused(verifier, issuer.token(exp=None), "missing")
    refused(verifier, issuer.token(aud=None), "missing")


def test_bad_signature_and_tampered_claims(issuer, verifier):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(verifier, issuer.token(key=stranger), "signature")
    header, payload, signature = issuer.token("clerk", branches=["npra-isa-town"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["system_admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(verifier, f"{header}.{forged}.{signature}", "signature")


def test_alg_none_is_refused(issuer, verifier):
    unsigned = jwt.encode(issuer.claims("system_admin"), None, algorithm="none", headers={"kid": issuer.current})
    refused(verifier, unsigned, "algorithm")


def test_hs256_signed_with_the_public_key_is_refused(issuer, verifier):
    """Algorithm confusion: the issuer's public key used as an HMAC secret."""
    public_pem = issuer.keys[issuer.current].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.current}).encode())
    payload = base64.urlsafe_b64encode(json.dumps(issuer.claims("system_admin")).encode())
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    refused(verifier, (signing_input + b"." + mac).decode(), "algorithm")


def test_an_unknown_kid_refetches_the_key_set_once(issuer):
    verifier = Verifier(issuer.url, "mawaeed", IssuerKeys(issuer.url, cooldown=0))
    verifier.verify(issuer.token())
    fetched = issuer.jwks_fetches
    new_kid = issuer.rotate()  # the issuer rotates its key: the first token with it makes us look again
    assert verifier.verify(issuer.token(kid=new_kid)).roles == {"clerk"}
    assert issuer.jwks_fetches == fetched + 1
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(verifier, issuer.token(kid="never-published", key=stranger), "key the issuer does not publish")
    assert issuer.jwks_fetches == fetched + 2   # that one looked again too, once


def test_made_up_kids_do_not_hammer_the_issuer(issuer, verifier):
    verifier.verify(issuer.token())
    fetched = issuer.jwks_fetches
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for n in range(20):
        refused(verifier, issuer.token(kid=f"made-up-{n}", key=stranger), "key the issuer does not publish")
    assert issuer.jwks_fetches <= fetched + 1


def test_the_authorization_header(issuer, verifier):
    assert verifier.principal(None) is PUBLIC
    assert verifier.principal(f"Bearer {issuer.token('analyst')}").roles == {"analyst"}
    for bad in ("Basic dXNlcjpwYXNz", "Bearer ", "Bearer not-a-token"):
        with pytest.raises(Unauthenticated):
            verifier.principal(bad)


def test_keycloak_claims_are_read_like_plain_ones():
    claims = {"sub": "u1", "realm_access": {"roles": ["clerk", "offline_access"]},
              "resource_access": {"mawaeed": {"roles": ["branch_manager"]}, "account": {"roles": ["auditor"]}},
              "branches": ["npra-isa-town", "npra-muharraq"], "directorates": "npra", "scope": "openid events:booking",
              "national_id": "900112345", "counter": 5}
    caller = principal_from(claims, "mawaeed", cpr_claim="national_id")
    assert caller.roles == {"clerk", "branch_manager"}       # not another client's roles, not unknown ones
    assert caller.branches == {"npra-isa-town", "npra-muharraq"} and caller.directorates == {"npra"}
    assert caller.scopes == {"openid", "events:booking"} and caller.cpr == "900112345" and caller.counter == "5"


def test_places(issuer, verifier):
    clerk = verifier.verify(issuer.token("clerk", branches=["npra-isa-town"]))
    admin = verifier.verify(issuer.token("directorate_admin", directorates=["npra"]))
    staff = ("clerk", "branch_manager", "directorate_admin")
    assert clerk.may_act_at(staff, "npra-isa-town", "npra") and not clerk.may_act_at(staff, "npra-muharraq", "npra")
    assert admin.may_act_at(staff, "npra-muharraq", "npra") and not admin.may_act_at(staff, "cid-manama", "cid")
    assert not clerk.may_act_at(("branch_manager",), "npra-isa-town", "npra")
    assert clerk.actor(staff, "npra-isa-town") == {"subject": clerk.subject, "role": "clerk", "branch": "npra-isa-town"}


def test_the_development_issuer_signs_what_the_verifier_accepts(tmp_path):
    dev = DevelopmentIssuer(str(tmp_path), "http://localhost:8000")
    verifier = Verifier("http://localhost:8000", "mawaeed", dev)
    caller = verifier.verify(dev.issue("kiosk", branches=["npra-isa-town"], ttl_seconds=parse_ttl("8h")))
    assert caller.roles == {"kiosk"} and caller.branches == {"npra-isa-town"}
    assert DevelopmentIssuer(str(tmp_path), "http://localhost:8000").kid == dev.kid   # the key is kept
    other = DevelopmentIssuer(str(tmp_path / "elsewhere"), "http://localhost:8000")
    with pytest.raises(Unauthenticated):
        verifier.verify(other.issue("clerk"))
    assert dev.jwks()["keys"][0]["kid"] == dev.kid and "d" not in dev.jwks()["keys"][0]   # no private part
    assert dev.discovery()["jwks_uri"] == "http://localhost:8000/.well-known/jwks.json"


def test_durations():
    assert [parse_ttl(t) for t in ("900s", "30m", "8h", "2d")] == [900, 1800, 28800, 172800]
    with pytest.raises(ValueError):
        parse_ttl("eight hours")
