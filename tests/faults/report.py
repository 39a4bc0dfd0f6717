"""The table of the fault suite's results: one row per fault, printed at the end of the run (conftest.py)."""

RESULTS: list[dict] = []  # one row per fault, in the order they ran
RESULTS_FILE: list = []   # where the table was written (the session's temporary folder)
COLUMNS = ["fault", "events lost", "effects doubled", "replay identical", "5xx during", "5xx after",
           "5xx without Retry-After", "first write after (s)", "caught up after (s)", "notes"]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(column, "")) for column in COLUMNS) + " |")
    return "\n".join(lines)
