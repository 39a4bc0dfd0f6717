"""The `mawaeed` command as a new user meets it (services/cli/__init__.py): a mistake or a missing thing is one line
on stderr and exit 2, never a traceback; nothing is created by a tool that only reads; erasing refuses a CPR
nobody knows and asks before it forgets anyone. Run in-process on the small booking log of test_history.py."""
import json

import pytest

from services.cli import main
from shared import vault
from tests.unit.booking.test_history import PERSON, db  # noqa: F401  (db: a booking log, a fixture)


@pytest.fixture
def suite_env(backend_config, monkeypatch):
    """The environment a command reads, pointing at the parametrised backend's databases."""
    for name in ("MAWAEED_DATA_DIR", "DATABASE_URL", "DATABASE_SCHEMA_PREFIX", "MAWAEED_EXPORT_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in backend_config.items():
        monkeypatch.setenv(name, value)
    return backend_config


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's refusals
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line]  # not the log
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_replay_of_a_database_that_is_not_there_fails_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MAWAEED_DATA_DIR", str(tmp_path / "nowhere"))
    code, out, err = run(capsys, "replay", "booking", "--direct")
    assert code == 2 and "identical" not in out
    assert "no booking database" in one_line(err) and not (tmp_path / "nowhere").exists()


def test_a_replay_of_another_schema_fails_too(suite_env, db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_SCHEMA_PREFIX", "mawaeed_nobody_")
    monkeypatch.setenv("MAWAEED_DATA_DIR", suite_env.get("MAWAEED_DATA_DIR", "") + "/elsewhere")
    code, out, err = run(capsys, "replay", "booking")
    assert code == 2 and "no booking database" in one_line(err) and "identical" not in out


def test_a_replay_whose_feed_is_unreachable_says_so_in_one_line(suite_env, db, capsys):
    code, out, err = run(capsys, "replay", "catalogue", "--service", "booking", "--api", "http://127.0.0.1:9")
    assert code == 2 and "cannot read the events feed at http://127.0.0.1:9" in one_line(err)


@pytest.mark.parametrize("argv, says", [
    (("export", "booking", "{tmp}/x.csv", "--clear"), "export writes name.jsonl or name.parquet"),
    (("export", "booking", "{tmp}/missing/x.jsonl", "--clear"), "no folder"),
    (("export", "booking", "{tmp}/x.jsonl", "--clear", "--since", "yesterday"), "not an instant with an offset"),
    (("export", "booking", "{tmp}/x.jsonl", "--clear", "--until", "2026-12-07T10:00"), "not an instant"),
    (("export", "booking", "{tmp}/x.jsonl", "--clear", "--types", "SlotBookd"), "publishes no event type"),
    (("at", "slot", "npra-isa-town", "passport-renewal", "2026-12-08T07:00", "2026-12-06T09:30:00+03:00"),
     "not an instant"),
    (("at", "queue", "npra-isa-town", "yesterday"), "not an instant"),
])
def test_every_mistake_is_one_line_and_exit_2(suite_env, db, tmp_path, capsys, argv, says):
    code, out, err = run(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2 and says in one_line(err)
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.csv").exists()


def test_types_without_the_service_prefix_are_the_exported_services(suite_env, db, tmp_path, capsys):
    out = tmp_path / "booked.jsonl"
    code, _, err = run(capsys, "export", "booking", str(out), "--clear", "--types", "SlotBooked")
    assert code == 0, err
    assert [json.loads(line)["type"] for line in out.read_text().splitlines()] == ["booking.SlotBooked"] * 2
    code, _, err = run(capsys, "export", "booking", str(out), "--clear", "--types", "booking.BookingCancelled",
                       "--since", "2026-12-06T10:00:00+03:00")
    assert code == 0 and [json.loads(line)["type"] for line in out.read_text().splitlines()] == \
        ["booking.BookingCancelled"]


def test_at_slot_says_every_time_in_bahrain_time(suite_env, db, capsys):
    code, out, err = run(capsys, "at", "slot", "npra-isa-town", "passport-renewal", "2026-12-08T07:00:00+03:00",
                         "2026-12-06T07:30:00Z")
    assert code == 0, err
    state = json.loads(out)
    assert (state["start"], state["at"]) == ("2026-12-08T07:00:00+03:00", "2026-12-06T10:30:00+03:00")
    assert {b["booked_at"] for b in state["bookings"]} == {"2026-12-06T09:00:00+03:00", "2026-12-06T10:00:00+03:00"}


def log_of(db) -> list:
    db.sequence()  # what the command appended, numbered as the booking service's relay would
    with db.transaction() as uow:
        return uow.store.read_all(limit=1000)


def test_erasing_a_cpr_nobody_used_writes_nothing(suite_env, db, capsys):
    before = log_of(db)
    code, out, err = run(capsys, "erase", "770100001", "--yes")
    assert code == 1 and one_line(err) == "nobody with this CPR is known to the suite"
    assert log_of(db) == before


def test_erasing_asks_at_a_terminal_and_a_script_must_say_yes(suite_env, db, capsys, monkeypatch):
    cpr = PERSON["cpr"]
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(capsys, "erase", cpr)
    assert code == 2 and "--yes" in one_line(err) and len(log_of(db)) == 3  # not asked, not erased

    asked = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "999")
    code, out, err = run(capsys, "erase", cpr)
    assert code == 1 and "nothing was erased" in err and len(log_of(db)) == 3
    assert cpr not in asked[0] and "90*****45" in asked[0]  # the prompt shows it masked

    monkeypatch.setattr("builtins.input", lambda prompt: cpr[-3:])
    code, out, err = run(capsys, "erase", cpr)
    assert code == 0 and cpr not in out + err
    assert log_of(db)[-1].type == "booking.PersonErased"
    assert log_of(db)[-1].payload == {"subject": vault.subject_of(cpr)}


def test_the_erasure_command_refuses_an_unknown_person_and_writes_nothing(db):
    from services.booking import commands
    from shared.errors import NotFound
    with pytest.raises(NotFound) as refused:
        commands.erase(db, "770100001")
    assert refused.value.code == "PERSON_UNKNOWN" and refused.value.message_ar
    assert len(log_of(db)) == 3
    assert commands.erase(db, "770100001", known_elsewhere=True)["bookings"] == 0  # a walk-in the queue knows
    assert log_of(db)[-1].type == "booking.PersonErased"
    again = commands.erase(db, "770100001")  # erased before: known, and nothing new is recorded
    assert again["bookings"] == 0 and len(log_of(db)) == 4


def test_a_walk_in_only_the_queue_knows_is_erased_from_the_command(suite_env, db, open_db, capsys):
    from shared.dependencies import service_metadata
    walk_in = "880512345"
    with open_db("queue", service_metadata()).transaction() as uow:  # as a check-in with a CPR leaves it
        uow.store.vault._key(vault.subject_of(walk_in), create=True)
    code, out, err = run(capsys, "erase", walk_in, "--yes")
    assert code == 0, err
    assert log_of(db)[-1].type == "booking.PersonErased" and walk_in not in out + err
