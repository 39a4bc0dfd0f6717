"""`mawaeed dead-letters` without a broker (services/cli/dead_letters.py): its parsing, the refusals that come before
any connection (one line on stderr, exit 2), the embedded mode said plainly, an unreachable broker, and what a dead
letter shows of a person. The broker side is tests/integration/test_dead_letters.py."""
import socket

import pytest

from services.cli import dead_letters, main


@pytest.fixture
def closed_port():
    with socket.socket() as s:  # bound but never listening: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def run(monkeypatch, capsys, amqp_uri, *argv):
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    status = main(["dead-letters", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("argv, expected", [
    (["list"], {"dead_letters_command": "list", "queue": None, "event_id": None}),
    (["show", "--id", "e1", "--clear"], {"dead_letters_command": "show", "event_id": "e1", "clear": True}),
    (["replay", "--queue", "availability.bookings"], {"dead_letters_command": "replay",
                                                      "queue": "availability.bookings"}),
    (["discard", "--id", "e1", "--reason", "a test"], {"dead_letters_command": "discard", "reason": "a test"}),
])
def test_the_commands_parse(argv, expected):
    import argparse
    parser = argparse.ArgumentParser()
    dead_letters.register(parser.add_subparsers(dest="command"))
    args = vars(parser.parse_args(["dead-letters", *argv]))
    assert {k: args[k] for k in expected} == expected


def test_discard_wants_a_reason(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dead-letters", "discard", "--id", "e1"])
    assert exit_.value.code == 2 and "--reason" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["replay"], "--queue Q"),
    (["show", "--queue", "availability.bookings"], "show wants --id"),
    (["list", "--queue", "nobody.listens"], "no dead-letter queue for 'nobody.listens'"),
    (["discard", "--id", "e1", "--reason", "  "], "--reason must say why"),
])
def test_a_mistake_is_one_line_and_exit_2_before_any_connection(monkeypatch, capsys, closed_port, argv, said):
    status, out, err = run(monkeypatch, capsys, f"pyamqp://guest:guest@127.0.0.1:{closed_port}//", *argv)
    assert status == 2 and said in err and len(err.strip().splitlines()) == 1 and not out


def test_a_queue_may_be_named_by_its_subscription_or_its_dead_letter_queue():
    assert [s.name for s in dead_letters.subscriptions_of("queue.bookings.dead-letter")] == ["queue.bookings"]
    assert [s.name for s in dead_letters.subscriptions_of("queue.bookings")] == ["queue.bookings"]
    assert "web.queue" not in [s.name for s in dead_letters.subscriptions_of(None)]  # live only: none


def test_the_embedded_mode_says_it_has_no_dead_letters_across_processes(monkeypatch, capsys):
    status, out, err = run(monkeypatch, capsys, "memory://localhost/", "list")
    assert status == 2 and "embedded mode" in err and "no dead letters another process can see" in err


def test_an_unreachable_broker_is_one_line_with_the_password_hidden(monkeypatch, capsys, closed_port):
    status, out, err = run(monkeypatch, capsys, f"pyamqp://guest:s3cret@127.0.0.1:{closed_port}//", "list")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("mawaeed dead-letters: cannot reach the broker at amqp://guest:**@127.0.0.1:")
    assert "s3cret" not in err


def test_personal_fields_are_masked_wherever_they_are():
    body = {"payload": {"person": {"cpr": "900112345", "name": "Fatima Ali", "mobile": "+97336123456",
                                   "email": "fatima@example.com", "language": "ar"},
                        "messages": [{"to": "+97336123456"}, {"to": "fatima@example.com"}], "reference": "K7MX"}}
    masked = dead_letters.mask_personal(body)
    person = masked["payload"]["person"]
    assert person == {"cpr": "90*****45", "name": "F***", "mobile": "+973****56", "email": "f***@example.com",
                      "language": "ar"}
    assert masked["payload"]["messages"] == [{"to": "+973****56"}, {"to": "f***@example.com"}]
    assert masked["payload"]["reference"] == "K7MX"
