"""The hall's screens: call-next with 200 displays connected to one branch's live stream, and how long a call
takes to reach every one of them.

    python -m bench.display [--connections 200] [--calls 100]

Runs the embedded suite (`mawaeed run`: every service in one process, kombu's in-memory transport), so the
screens' streams, the board fetches they cause and the calls share one process and its cores, as they do on a
small centre's server. Calls `calls` tickets (each followed by `served`, as a clerk does) with no screen
connected, then connects `connections` screens to the branch's live stream and calls `calls` more: call-next's
latency side by side, and for each call the delay from its 200 to the message showing it on every screen.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import aiohttp
import yaml

from bench.common import Progress, cpr, emit, log, percentiles_ms
from bench.suite import ROOT, next_working_morning

BRANCH, SERVICE, COUNTER = "npra-isa-town", "passport-renewal", "1"


class Embedded:
    """`mawaeed run` in a process of its own, on a fresh data folder and a catalogue with room for walk-ins."""

    def __init__(self, workdir: Path, port: int):
        catalogue = yaml.safe_load((ROOT / "services/availability/catalogue.yml").read_text(encoding="utf-8"))
        catalogue["queue"]["walk_ins_per_service"] = 5000
        (workdir / "catalogue.yml").write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "MAWAEED_PORT": str(port), "MAWAEED_DATA_DIR": str(workdir / "var"),
                    "MAWAEED_NOW": next_working_morning(catalogue, datetime.now().date()),
                    "MAWAEED_CATALOGUE": str(workdir / "catalogue.yml"), "MAWAEED_RATE_LIMITS": "off",
                    "MAWAEED_PUBLIC_URL": self.url, "LOG_LEVEL": "WARNING"}
        self.env.pop("AMQP_URI", None)
        self.env.pop("DATABASE_URL", None)
        self.log = open(workdir / "suite.log", "ab")
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the embedded suite did not come up; see {self.log.name}")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def clerk(self) -> str:
        from shared.issuer import DevelopmentIssuer
        return DevelopmentIssuer(self.env["MAWAEED_DATA_DIR"], self.url).issue("clerk", branches=[BRANCH])


class Screen:
    """One display's stream: when each board arrived."""

    def __init__(self):
        self.boards: list[tuple[float, dict]] = []
        self.ready = asyncio.Event()

    async def watch(self, session, url):
        while True:  # as a page's EventSource does: a screen turned away at a busy moment (503) comes back
            async with session.get(url, headers={"Accept": "text/event-stream"}) as response:
                if response.status == 503:
                    await asyncio.sleep(float(response.headers.get("Retry-After") or 2))
                    continue
                assert response.status == 200, await response.text()
                kind = None  # a board has no `event:` line; the heartbeat is `event: ping`
                async for line in response.content:
                    if line.startswith(b"event: "):
                        kind = line[7:].strip()
                    elif line.startswith(b"data: ") and kind is None:
                        self.boards.append((time.perf_counter(), json.loads(line[6:])))
                        self.ready.set()
                    elif not line.strip():
                        kind = None
                return

    def shown_at(self, number: str) -> float | None:
        return next((at for at, board in self.boards
                     if board["last_called"] and board["last_called"][0]["number"] == number
                     and board["last_called"][0]["counter"] == COUNTER), None)


async def run(args, suite: Embedded) -> dict:
    base = f"{suite.url}/api/v1/branches/{BRANCH}"
    headers = {"Authorization": f"Bearer {suite.clerk()}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers,
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        deadline = time.monotonic() + 60
        while True:  # the queue learns the catalogue from availability's events just after the start
            async with session.post(f"{base}/counters/{COUNTER}/open", json={"services": [SERVICE]}) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the counter would not open: {answer.status} {await answer.text()}")
            await asyncio.sleep(0.3)
        arrivals = 2 * args.calls + 20
        progress = Progress("checking in walk-ins", arrivals)
        for start in range(0, arrivals, 20):
            async def check_in(n):
                async with session.post(f"{base}/check-ins", json={"walk_in": True, "service": SERVICE,
                                                                   "cpr": cpr(700_000 + n)}) as answer:
                    assert answer.status in (200, 201), await answer.text()
                progress.step()
            await asyncio.gather(*(check_in(n) for n in range(start, min(start + 20, arrivals))))
        progress.close()

        async def call() -> tuple[float, float, dict]:
            started = time.perf_counter()
            async with session.post(f"{base}/counters/{COUNTER}/call-next") as answer:
                assert answer.status == 200, await answer.text()
                body = await answer.json()
            return started, time.perf_counter(), body["ticket"]

        async def serve(ticket):
            async with session.post(f"{suite.url}/api/v1/tickets/{ticket['id']}/served") as answer:
                await answer.read()

        # -- no screen connected ---------------------------------------------------------------------
        alone, progress = [], Progress("call-next, no screen", args.calls)
        for _ in range(args.calls):
            started, answered, ticket = await call()
            alone.append(answered - started)
            await serve(ticket)
            await asyncio.sleep(args.gap)
            progress.step()
        progress.close()

        # -- the screens connected ------------------------------------------------------------------
        screens = [Screen() for _ in range(args.connections)]
        live = f"{base}/live"
        watchers = [asyncio.create_task(s.watch(session, live)) for s in screens]
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in screens)), timeout=60)
        log(f"  {len(screens)} screens connected")
        watched, delays, missing, progress = [], [], 0, Progress(f"call-next, {args.connections} screens", args.calls)
        for _ in range(args.calls):
            started, answered, ticket = await call()
            watched.append(answered - started)
            wait_until = time.monotonic() + 5
            while time.monotonic() < wait_until and not all(s.shown_at(ticket["number"]) for s in screens):
                await asyncio.sleep(0.005)
            for screen in screens:
                shown = screen.shown_at(ticket["number"])
                if shown is None:
                    missing += 1
                else:
                    delays.append(max(0.0, shown - answered))
            await serve(ticket)
            await asyncio.sleep(args.gap)
            progress.step()
        progress.close()
        messages = sum(len(s.boards) for s in screens)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    return {"branch": BRANCH, "connections": args.connections, "calls": args.calls,
            "call_next_without_screens": percentiles_ms(alone), "call_next_with_screens": percentiles_ms(watched),
            "call_to_screen": {**percentiles_ms(delays), "deliveries": len(delays), "missing": missing},
            "messages_per_screen": round(messages / max(1, len(screens)), 1)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between one call's served and the next call")
    parser.add_argument("--port", type=int, default=8190)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mawaeed-bench-display-") as workdir, \
            Embedded(Path(workdir), args.port) as suite:
        result = asyncio.run(run(args, suite))
    alone, watched, reach = (result["call_next_without_screens"], result["call_next_with_screens"],
                             result["call_to_screen"])
    log(f"  call-next p50/p99: {alone['p50_ms']}/{alone['p99_ms']} ms without screens, "
        f"{watched['p50_ms']}/{watched['p99_ms']} ms with {args.connections}")
    log(f"  call's 200 to every screen: p50 {reach['p50_ms']} p99 {reach['p99_ms']} max {reach['max_ms']} ms, "
        f"{reach['missing']} missing")
    return result


if __name__ == "__main__":
    emit(main())
