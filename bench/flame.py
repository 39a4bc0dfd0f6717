"""A flame graph of one process while it works: py-spy (the bench extra) sampling it from outside, written as an
SVG. py-spy needs ptrace (root, or CAP_SYS_PTRACE); when it is missing or cannot attach, the run goes on and the
result says why instead."""
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when it is not on PATH
    return str(beside) if beside.exists() else shutil.which("py-spy")


class FlameGraph:
    def __init__(self, pid: int, path: str | Path, rate: int = 100):
        self.path, self.process, self.note = Path(path), None, None
        binary = py_spy()
        if binary is None:
            self.note = "py-spy is not installed (pip install '.[bench]')"
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # --nonblocking: read the process without stopping it, so the sampling does not slow what it measures
        self.process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--output", str(self.path), "--format", "flamegraph",
             "--rate", str(rate), "--nonblocking"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes the graph when interrupted
        try:
            output, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        if not self.path.exists():
            self.note = f"py-spy wrote nothing (exit {self.process.returncode}): {output.strip()[-300:]}"

    def result(self) -> dict:
        return {"path": str(self.path) if self.note is None else None, "note": self.note}
