"""`mawaeed insights` (services/cli/insights.py): the figures of the insights database as a table, CSV or JSON;
one line and exit 2 for what the person can put right."""
import json

from services.cli import main
from services.cli.insights import flatten
from services.insights import projection
from shared.dependencies import open_database


def test_figures_flatten_to_dotted_columns_and_bands():
    flat = flatten({"served": 1, "wait_minutes": {"all": {"p90": 2.5}},
                    "satisfaction_by_wait_band": [{"band": "0-10", "rated": 1, "mean": 5.0}]})
    assert flat == {"served": 1, "wait_minutes.all.p90": 2.5, "satisfaction_by_wait_band.0-10.rated": 1,
                    "satisfaction_by_wait_band.0-10.mean": 5.0}


def test_each_format_reads_the_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAWAEED_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    open_database({"MAWAEED_DATA_DIR": str(tmp_path)}, "insights", projection.metadata).dispose()
    assert main(["insights", "--all", "--from", "2026-12-06", "--to", "2026-12-12", "--by", "week",
                 "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [p["period"] for p in answer["periods"]] == ["2026-W49", "2026-W50"]
    assert main(["insights", "--all", "--from", "2026-12-06", "--to", "2026-12-07", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["period", "2026-12-06", "2026-12-07", "total"]
    assert main(["insights", "--all", "--from", "2026-12-06", "--to", "2026-12-06"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["period", "made", "cancelled"] and table[-1].split()[0] == "total"


def test_an_unknown_branch_or_a_bad_range_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAWAEED_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["insights", "--all", "--from", "2026-12-06", "--to", "2026-12-07"]) == 2  # no database yet
    assert "no insights database" in capsys.readouterr().err
    open_database({"MAWAEED_DATA_DIR": str(tmp_path)}, "insights", projection.metadata).dispose()
    assert main(["insights", "--branch", "nowhere", "--from", "2026-12-06", "--to", "2026-12-07"]) == 1
    assert "no branch 'nowhere'" in capsys.readouterr().err
    assert main(["insights", "--all", "--from", "2026-12-06", "--to", "2028-12-07"]) == 2
    assert "at most 400 days" in capsys.readouterr().err
