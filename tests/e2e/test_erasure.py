"""Forgetting a person (`mawaeed erase CPR`): afterwards no export, replay or API answer shows their CPR, name
or contacts, and every other figure is unchanged. In both run modes."""
import json
import time

import pytest
import requests

pytestmark = pytest.mark.e2e

START = "2026-12-10T10:00:00+03:00"
GONE, KEPT = ("870212345", "Noura Khalid", "noura@example.com"), ("870212346", "Hamad Saleh", "hamad@example.com")


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)
    return value


def feed(suite, service):
    return requests.get(f"{suite.api}/events", params={"service": service, "limit": 1000}, headers=suite.reader(),
                        timeout=10).json()["events"]


def test_an_erased_person_is_gone_everywhere_and_every_count_stays(suite, tmp_path):
    references = {}
    for cpr, name, email in (GONE, KEPT):
        response = requests.post(f"{suite.api}/bookings", timeout=10, json={
            "cpr": cpr, "name": name, "email": email, "mobile": "+97336001122", "language": "en",
            "branch": "npra-isa-town", "service": "passport-renewal", "start": START})
        assert response.status_code == 201, response.text
        references[cpr] = response.json()["reference"]
    slot = lambda: next(s for s in requests.get(f"{suite.api}/availability", timeout=10, params={  # noqa: E731
        "branch": "npra-isa-town", "service": "passport-renewal", "date": START[:10]}).json()["slots"]
        if s["start"] == START)
    wait_for(lambda: slot()["remaining"] == 1)

    erased = suite.run_cli("erase", GONE[0], "--yes")  # --yes: a script, no terminal to confirm at
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert GONE[0] not in erased.stdout  # even the operator's tool prints it masked

    def forgotten_everywhere():
        return all(GONE[0] not in json.dumps(feed(suite, s), ensure_ascii=False) and
                   GONE[1] not in json.dumps(feed(suite, s), ensure_ascii=False) for s in ("booking", "queue"))
    wait_for(forgotten_everywhere)
    person = next(e["payload"]["person"] for e in feed(suite, "booking")
                  if e["payload"].get("reference") == references[GONE[0]])
    assert person["cpr"] == person["name"] == person["email"] == "[erased]"
    assert requests.get(f"{suite.api}/bookings/{references[GONE[0]]}", headers={"X-CPR": GONE[0]},
                        timeout=10).status_code == 404
    wait_for(lambda: requests.get(f"{suite.api}/notifications", timeout=10, headers={"X-CPR": GONE[0]}, params={
        "reference": references[GONE[0]]}).status_code == 404)
    kept = requests.get(f"{suite.api}/bookings/{references[KEPT[0]]}", headers={"X-CPR": KEPT[0]}, timeout=10)
    assert kept.status_code == 200 and kept.json()["name"] == KEPT[1]
    assert slot()["remaining"] == 1  # the erased person's booking still holds its place

    for service in ("booking", "notifications"):
        out = tmp_path / f"{service}.jsonl"
        exported = suite.run_cli("export", service, str(out), "--clear")
        assert exported.returncode == 0, exported.stderr
        text = out.read_text(encoding="utf-8")
        assert GONE[0] not in text and GONE[1] not in text and GONE[2] not in text
    assert KEPT[0] in (tmp_path / "booking.jsonl").read_text(encoding="utf-8")
    for projection in ("availability", "queue", "booking", "notifications"):  # erased, and still the same state
        replay = suite.run_cli("replay", projection, "--api", suite.base_url)
        assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr
    for service in ("availability", "booking", "queue", "notifications"):
        replay = suite.run_cli("replay", "catalogue", "--service", service, "--api", suite.base_url)
        assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr


def test_a_cpr_nobody_used_is_refused_by_the_api_and_the_command_and_nothing_is_recorded(suite):
    nobody = "770100002"
    heads = lambda: requests.get(f"{suite.api}/events", params={"service": "booking", "limit": 1},  # noqa: E731
                                 headers=suite.reader(), timeout=10).json()["head"]
    before = heads()
    refused = requests.post(f"{suite.api}/people/erase", json={"cpr": nobody, "reason": "a typo"},
                            headers=suite.as_("system_admin"), timeout=10)
    assert refused.status_code == 404, refused.text
    error = refused.json()["error"]
    assert error["code"] == "PERSON_UNKNOWN" and error["message_ar"] and nobody not in refused.text
    erased = suite.run_cli("erase", nobody, "--yes")
    assert erased.returncode == 1 and "nobody with this CPR is known to the suite" in erased.stderr
    assert "Traceback" not in erased.stderr and nobody not in erased.stdout + erased.stderr
    assert heads() == before
