"""The domain modules are pure: importing one, in a fresh interpreter, loads no database, schema or
cryptography library, not even through what it imports. (A test process has them all loaded already, so this
asks a new one.)"""
import json
import subprocess
import sys

import pytest

PURE = ["services.queue.domain", "services.booking.rules", "services.booking.fold", "services.notifications.plan",
        "shared.schedule", "shared.events", "shared.masking"]
FORBIDDEN = ["sqlalchemy", "marshmallow", "cryptography", "nameko", "kombu", "eventlet", "psycopg2"]


@pytest.mark.parametrize("module", PURE)
def test_a_domain_module_loads_no_infrastructure(module):
    probe = (f"import json, sys; import {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], f"{module} loads {result.stdout.strip()}"


def test_the_probe_can_fail():
    """The same probe names what an impure module loads (so the test above is not vacuous)."""
    probe = ("import json, sys; import shared.catalogue; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "sqlalchemy" in json.loads(result.stdout)
