"""CPU time per process of the suite, from /proc: what a booking costs, whatever else the machine is doing.

Each process's utime+stime (/proc/<pid>/stat, in clock ticks) is sampled through a window; the window's cost of a
group (a service's processes, PostgreSQL's, RabbitMQ's) is the sum over its processes of the last sample less the
first (a process first seen inside the window started in it: from 0). The same is measured over a quiet period
first; that idle rate, times the window's length, is subtracted, so a relay's polling or a broker's heartbeats are
not charged to the bookings.

PostgreSQL's share is in two groups: "postgresql", the backends serving the suite's own connections, matched by the
client port of each backend (pg_stat_activity) against the local ports of the suite's processes' sockets
(/proc/<pid>/fd and /proc/net/tcp), so another session's backends on the same server are not counted; and
"postgresql server", its postmaster and background processes (checkpointer, WAL writer, autovacuum, ...), which
work for every client of the server: on a shared machine that figure carries others' writes too.
RabbitMQ's is its beam.smp (a node started by the fault tests, named
mawaeed-faults-*, is not the one the suite uses).
"""
import os
import re
import threading
import time
from pathlib import Path

import sqlalchemy as sa

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[str, int, int]:
    """(command name, parent pid, utime+stime in ticks) from the text of /proc/<pid>/stat. The name is in
    parentheses and may itself hold spaces or parentheses, so the fields are counted after the last ')'."""
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # after the name: state(3) ppid(4) ... utime(14) stime(15), numbered from 1 in proc(5)
    return name, int(fields[1]), int(fields[11]) + int(fields[12])


def ticks(pid: int) -> int | None:
    """utime+stime of a process in clock ticks; None when it is gone."""
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())[2]
    except (OSError, ValueError, IndexError):
        return None


def parse_tcp_table(text: str) -> list[tuple[int, int, int]]:
    """(local port, remote port, socket inode) of each row of /proc/net/tcp or tcp6."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        rows.append((int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16), int(parts[9])))
    return rows


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def client_ports(pids, server_port: int) -> set[int]:
    """The local ports of the connections these processes hold open to `server_port` (PostgreSQL's)."""
    inodes = set().union(*(socket_inodes(p) for p in pids)) if pids else set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = parse_tcp_table((PROC / "net" / table).read_text())
        except OSError:
            continue
        ports.update(local for local, remote, inode in rows if remote == server_port and inode in inodes)
    return ports


def beam_pids() -> list[int]:
    """RabbitMQ's Erlang VM(s) on this machine, not a fault test's node of its own."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            if b"mawaeed-faults" in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


class PostgresProcesses:
    """The PostgreSQL processes that work for the suite's processes (see the module's docstring)."""

    def __init__(self, url: str, port: int = 5432):
        self.engine, self.port = sa.create_engine(url, pool_size=1), port  # one connection, kept

    def pids(self, suite_pids) -> tuple[list[int], list[int]]:
        """(the backends serving the suite's connections, the server's own processes: postmaster, checkpointer,
        WAL writer, autovacuum...; these work for every client of the server, not only the suite)."""
        ports = client_ports(suite_pids, self.port)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT pid, backend_type, client_port FROM pg_stat_activity")).all()
        if not rows:
            return [], []
        backends = [pid for pid, kind, port in rows if kind == "client backend" and port in ports]
        server = [pid for pid, kind, _ in rows if kind != "client backend"]
        postmaster = _parent(rows[0][0])
        return backends, server + ([postmaster] if postmaster else [])


def _parent(pid: int) -> int | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())[1]
    except (OSError, ValueError, IndexError):
        return None


class Window:
    """Per-process first and last tick counts through a window, by group; pure arithmetic over the samples."""

    def __init__(self):
        self.first: dict[str, dict[int, int]] = {}
        self.last: dict[str, dict[int, int]] = {}
        self.started = self.ended = None

    def add(self, group: str, pid: int, count: int, opening: bool) -> None:
        firsts = self.first.setdefault(group, {})
        if pid not in firsts:
            firsts[pid] = count if opening else 0  # a process first seen after the opening started in the window
        self.last.setdefault(group, {})[pid] = count

    def seconds(self) -> dict[str, float]:
        return {group: sum(self.last[group][pid] - first for pid, first in firsts.items()) / TICKS_PER_SECOND
                for group, firsts in self.first.items()}

    @property
    def length(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def cost_per_item(busy: dict[str, float], busy_seconds: float, idle: dict[str, float], idle_seconds: float,
                  items: int) -> dict[str, float]:
    """Milliseconds of CPU per item by group: the busy window's CPU less the idle rate over as long, per item
    (never below zero: a process idler than when it was quiet cost nothing more)."""
    result = {}
    for group, spent in busy.items():
        idle_rate = idle.get(group, 0.0) / idle_seconds if idle_seconds else 0.0
        result[group] = round(max(0.0, spent - idle_rate * busy_seconds) * 1000 / max(items, 1), 2)
    return result


class CpuMeter:
    """Samples the groups' processes every `interval` seconds in a thread; `measure()` opens a window and
    `close()` ends it. `groups`: name -> pids (fixed), plus PostgreSQL and RabbitMQ found as above."""

    def __init__(self, groups: dict[str, list[int]], pg_url: str | None = None, pg_port: int = 5432,
                 interval: float = 0.25):
        self.groups, self.interval = groups, interval
        self.postgres = PostgresProcesses(pg_url, pg_port) if pg_url else None
        self.window: Window | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _pids(self) -> dict[str, list[int]]:
        pids = dict(self.groups)
        suite = [p for group in self.groups.values() for p in group]
        if self.postgres is not None:
            try:
                pids["postgresql"], pids["postgresql server"] = self.postgres.pids(suite)
            except sa.exc.SQLAlchemyError:
                pass
        pids["rabbitmq"] = beam_pids()
        return pids

    @staticmethod
    def record(window: Window, pids: dict[str, list[int]], opening: bool) -> None:
        for group, members in pids.items():
            window.first.setdefault(group, {})
            window.last.setdefault(group, {})
            for pid in members:
                count = ticks(pid)
                if count is not None:
                    window.add(group, pid, count, opening)

    def sample(self) -> None:
        pids = self._pids()
        with self.lock:
            if self.window is not None:
                self.record(self.window, pids, opening=False)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.sample()

    def open(self) -> None:
        """A new window, its opening sample taken before the sampling thread may add to it."""
        window = Window()
        window.started = time.monotonic()
        self.record(window, self._pids(), opening=True)
        with self.lock:
            self.window = window

    def close(self) -> tuple[dict[str, float], float]:
        """(CPU seconds by group, the window's length in seconds)."""
        self.sample()
        with self.lock:
            window, self.window = self.window, None
        window.ended = time.monotonic()
        return window.seconds(), window.length

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        if self.postgres is not None:
            self.postgres.engine.dispose()


def parse_pids(text: str) -> dict[str, list[int]]:
    """"booking=12+13,queue=14" -> {"booking": [12, 13], "queue": [14]} (how the suite hands them to a section)."""
    groups = {}
    for part in filter(None, text.split(",")):
        name, _, pids = part.partition("=")
        if not re.fullmatch(r"[\w-]+", name) or not pids:
            raise ValueError(f"not name=pid[+pid...]: {part!r}")
        groups[name] = [int(p) for p in pids.split("+")]
    return groups


def format_pids(groups: dict[str, list[int]]) -> str:
    return ",".join(f"{name}={'+'.join(map(str, pids))}" for name, pids in groups.items())
