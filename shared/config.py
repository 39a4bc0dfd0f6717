"""Configuration from the environment, in one place.

Embedded default: kombu's in-memory transport and one SQLite file per service under MAWAEED_DATA_DIR.
Distributed: AMQP_URI (RabbitMQ) and DATABASE_URL (PostgreSQL; each service gets its own schema in it).
"""
import os
from pathlib import Path

EMBEDDED_AMQP_URI = "memory://localhost/"


def nameko_config(env=os.environ) -> dict:
    amqp_uri = env.get("AMQP_URI", EMBEDDED_AMQP_URI)
    transport_options = {"max_retries": 3, "interval_start": 2, "interval_step": 1, "interval_max": 5}
    if amqp_uri.startswith("memory"):
        transport_options["polling_interval"] = 0.01  # the in-memory transport polls; 1 s by default
    # Loopback unless told otherwise: a trial is not on the network; images and manifests set 0.0.0.0 themselves.
    web_address = env.get("WEB_SERVER_ADDRESS", f"127.0.0.1:{env.get('MAWAEED_PORT', '8000')}")
    max_workers = int(env.get("MAWAEED_MAX_WORKERS", "20"))
    return {
        "AMQP_URI": amqp_uri,
        "TRANSPORT_OPTIONS": transport_options,
        "WEB_SERVER_ADDRESS": web_address,
        "DATABASE_URL": env.get("DATABASE_URL", ""),
        "DATABASE_SCHEMA_PREFIX": env.get("DATABASE_SCHEMA_PREFIX", "mawaeed_"),
        "DATABASE_POOL_SIZE": int(env.get("DATABASE_POOL_SIZE", "10")),
        "MAWAEED_DATA_DIR": env.get("MAWAEED_DATA_DIR", "./var"),
        # Where subscribers read the events feed to catch up: the public base URL (the gateway when
        # distributed). Embedded, this very process serves it.
        "MAWAEED_FEED_URL": env.get("MAWAEED_FEED_URL", f"http://127.0.0.1:{web_address.rsplit(':', 1)[-1]}"),
        "MAWAEED_CATALOGUE": env.get("MAWAEED_CATALOGUE", ""),
        "MAWAEED_MAX_ACTIVE_BOOKINGS": int(env.get("MAWAEED_MAX_ACTIVE_BOOKINGS", "3")),
        # The base URL people open (feedback links); the key that signs feedback tokens. Set both in production.
        "MAWAEED_PUBLIC_URL": env.get("MAWAEED_PUBLIC_URL", f"http://localhost:{web_address.rsplit(':', 1)[-1]}"),
        "MAWAEED_FEEDBACK_KEY": env.get("MAWAEED_FEEDBACK_KEY", "embedded-only-feedback-key"),
        # The keys of people's pseudonyms: the analysts' feed and exports use the export key, else the subject key.
        "MAWAEED_EXPORT_KEY": env.get("MAWAEED_EXPORT_KEY", ""),
        "MAWAEED_SUBJECT_KEY": env.get("MAWAEED_SUBJECT_KEY", "embedded-only-subject-key"),
        # Notifications: with neither SMTP_URL nor SMS_GATEWAY_URL, messages go to MAWAEED_DATA_DIR/outbox/.
        "SMTP_URL": env.get("SMTP_URL", ""),
        "MAIL_FROM": env.get("MAIL_FROM", ""),
        "SMS_GATEWAY_URL": env.get("SMS_GATEWAY_URL", ""),
        "SMS_GATEWAY_KEY": env.get("SMS_GATEWAY_KEY", ""),
        "NOTIFY_REMINDER_HOURS": float(env.get("NOTIFY_REMINDER_HOURS", "24")),
        "NOTIFY_RETRY_SECONDS": float(env.get("NOTIFY_RETRY_SECONDS", "30")),
        "NOTIFY_MAX_ATTEMPTS": int(env.get("NOTIFY_MAX_ATTEMPTS", "5")),
        # Sign-in: the OpenID Connect issuer whose tokens the suite accepts (unset: the embedded mode is its own
        # development issuer), the audience they must name, and the services' own client for reading feeds.
        "MAWAEED_OIDC_ISSUER": env.get("MAWAEED_OIDC_ISSUER", ""),
        "MAWAEED_OIDC_AUDIENCE": env.get("MAWAEED_OIDC_AUDIENCE", "mawaeed"),
        "MAWAEED_OIDC_CLIENT_ID": env.get("MAWAEED_OIDC_CLIENT_ID", ""),
        "MAWAEED_OIDC_CLIENT_SECRET": env.get("MAWAEED_OIDC_CLIENT_SECRET", ""),
        "MAWAEED_OIDC_CPR_CLAIM": env.get("MAWAEED_OIDC_CPR_CLAIM", "cpr"),
        "MAWAEED_OIDC_NAME_CLAIM": env.get("MAWAEED_OIDC_NAME_CLAIM", "name"),
        # The pages' own client at the issuer (staff sign-in: authorization code with PKCE, no secret).
        "MAWAEED_OIDC_WEB_CLIENT_ID": env.get("MAWAEED_OIDC_WEB_CLIENT_ID", "mawaeed-web"),
        # Abuse limits (shared/ratelimits.py), the proxies whose X-Forwarded-For is believed, browser origins.
        "MAWAEED_RATE_LIMITS": env.get("MAWAEED_RATE_LIMITS", ""),
        "MAWAEED_REDIS_URL": env.get("MAWAEED_REDIS_URL", ""),
        # Loopback by default: the gateway and the pages call the API from this machine for the person.
        "MAWAEED_TRUSTED_PROXIES": env.get("MAWAEED_TRUSTED_PROXIES", "127.0.0.1,::1"),
        # Where the pages call the API: the public base URL (the gateway when distributed; this process embedded).
        "MAWAEED_API_URL": env.get("MAWAEED_API_URL", ""),
        "MAWAEED_CORS_ORIGINS": env.get("MAWAEED_CORS_ORIGINS", ""),
        "MAWAEED_BOOKING_CHALLENGE": env.get("MAWAEED_BOOKING_CHALLENGE", "off"),
        "MAWAEED_CHALLENGE_KEY": env.get("MAWAEED_CHALLENGE_KEY", "embedded-only-challenge-key"),
        # Overload is answered, not queued: past this many HTTP requests in flight in a service, 503 OVERLOADED
        # at once (default: the workers it has). A request body must arrive within MAWAEED_BODY_TIMEOUT seconds
        # (read before a worker is taken), and a connection idle for MAWAEED_SOCKET_TIMEOUT is closed.
        "MAWAEED_MAX_IN_FLIGHT": int(env.get("MAWAEED_MAX_IN_FLIGHT") or max_workers),
        "MAWAEED_BODY_TIMEOUT": float(env.get("MAWAEED_BODY_TIMEOUT", "10")),
        "MAWAEED_SOCKET_TIMEOUT": float(env.get("MAWAEED_SOCKET_TIMEOUT", "60")),
        "max_workers": max_workers,
        "serializer": "json",
    }


# Where the gateway of the distributed mode finds each service (AVAILABILITY_URL, BOOKING_URL, ...): the
# ports deploy/run-distributed.sh gives them. Several replicas of a service: their URLs separated by commas
# (BOOKING_URL=http://127.0.0.1:8002,http://127.0.0.1:8012); set empty, the gateway is not in front of that service.
UPSTREAM_DEFAULTS = {"availability": "http://127.0.0.1:8001", "booking": "http://127.0.0.1:8002",
                     "queue": "http://127.0.0.1:8003", "notifications": "http://127.0.0.1:8004",
                     "web": "http://127.0.0.1:8005", "insights": "http://127.0.0.1:8006"}


def gateway_address(env=os.environ) -> str:
    """Where `mawaeed gateway` listens unless --listen says: GATEWAY_ADDRESS, else loopback on MAWAEED_PORT."""
    return env.get("GATEWAY_ADDRESS") or f"127.0.0.1:{env.get('MAWAEED_PORT', '8000')}"


def gateway_upstreams(env=os.environ) -> dict[str, list[str]]:
    """Each service the gateway is in front of, with the base URLs of its replicas."""
    upstreams = {}
    for name, default in UPSTREAM_DEFAULTS.items():
        urls = [u.strip() for u in env.get(f"{name.upper()}_URL", default).split(",") if u.strip()]
        if urls:
            upstreams[name] = urls
    return upstreams


def database_for(config: dict, service: str) -> tuple[str, str | None]:
    """(SQLAlchemy URL, PostgreSQL schema or None) of one service's own database."""
    url = config.get("DATABASE_URL") or ""
    if url:
        return url, f"{config.get('DATABASE_SCHEMA_PREFIX', 'mawaeed_')}{service}"
    data_dir = Path(config.get("MAWAEED_DATA_DIR") or "./var")
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir.resolve() / service}.sqlite3", None
