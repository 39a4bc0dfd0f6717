"""The image's HEALTHCHECK: GET /health/ready on this container's own port; exit 0 only on a 200 (ready:
every service answers and has finished starting). `healthcheck.py live` asks /health/live instead.

The port is WEB_SERVER_ADDRESS's (what `mawaeed run` binds), else MAWAEED_PORT, else 8000, which is also
the gateway's default --listen port. HEALTHCHECK_URL overrides all of that (for example a gateway started
with another --listen). Standard library only: the slim image has no curl.
"""
import os
import sys
import urllib.request


def health_url(env=os.environ) -> str:
    if env.get("HEALTHCHECK_URL"):
        return env["HEALTHCHECK_URL"]
    address = env.get("WEB_SERVER_ADDRESS") or f":{env.get('MAWAEED_PORT', '8000')}"
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    path = "/health/live" if sys.argv[1:] == ["live"] else "/health/ready"
    return f"http://{host}:{port}{path}"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # raises HTTPError on 503
            print(response.status, response.read(500).decode("utf-8", "replace"))
            return 0
    except Exception as exc:  # refused, timed out, or an unhealthy answer
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
