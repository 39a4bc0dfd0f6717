"""Where messages go: email over SMTP, SMS through an HTTP gateway, or, with neither configured (the embedded
default), a file outbox under MAWAEED_DATA_DIR/outbox/ where a person can read every message."""
import json
import logging
import re
import smtplib
import ssl
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.error import URLError
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import Request, urlopen

from services.notifications.messages import Message
from shared.clock import LOCAL, clock

log = logging.getLogger(__name__)
SENDER = formataddr(("مواعيد Mawaeed", "no-reply@mawaeed.local"))


class ChannelError(Exception):
    """The message was not accepted; the reason is safe to record (it names no recipient)."""


def _set_header(email: EmailMessage, name: str, value: str) -> None:
    """Non-ASCII text as RFC 2047 encoded words that each carry their own spaces: the email package's folder
    (Python 3.11, every policy) puts a space between two words into the folding whitespace between two encoded
    words, which readers drop ("مجمع الدانة" arrives as "مجمعالدانة"). Header keeps it inside a word, and lines
    short enough that the policy writes them as they are."""
    if value.isascii():
        email[name] = value
    else:
        email.set_raw(name, Header(value, "utf-8", maxlinelen=76, header_name=name).encode())


def calendar_method(data: bytes) -> str:
    """The METHOD of an iCalendar file: its part's Content-Type says the same (RFC 5546 section 5)."""
    found = re.search(rb"^METHOD:([A-Z-]+)\r?$", data, re.MULTILINE)
    return found.group(1).decode() if found else "PUBLISH"


def as_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage(policy=policy.SMTP)  # CRLF lines, as SMTP wants them
    email["From"] = sender
    email["To"] = message.to
    _set_header(email, "Subject", message.subject)
    # RFC 5322 requires a Date: the suite's clock (MAWAEED_NOW in demos), written in the centres' time zone
    email["Date"] = format_datetime((message.date or clock.now()).astimezone(LOCAL))
    email["Message-ID"] = message.message_id  # the same for a message sent twice: mail clients fold duplicates
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    for filename, content_type, data in message.attachments:
        maintype, subtype = content_type.split("/")
        # a text part (the .ics: its LOCATION and SUMMARY may be Arabic) says its charset, or readers take it as ASCII
        params = {"charset": "utf-8"} if maintype == "text" else {}
        if content_type == "text/calendar":  # calendar clients act on the part's method (RFC 6047 section 2.4)
            params["method"] = calendar_method(data)
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename, params=params or None)
    email["Content-Language"] = message.language  # after the body: building parts moves Content-* headers
    return email


class SmtpEmail:
    """SMTP_URL: smtp://host:port (STARTTLS when the server offers it), smtps://user:password@host:port (TLS)."""

    def __init__(self, url: str, sender: str = SENDER, timeout: float = 10.0):
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host, self.port = parts.hostname, parts.port or (465 if self.tls else 25)
        self.user, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        self.starttls = parse_qs(parts.query).get("starttls", ["auto"])[0]
        self.sender, self.timeout = sender, timeout

    def send(self, message: Message) -> None:
        try:
            if self.tls:
                server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                          context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with server:
                if not self.tls and self.starttls != "no" and server.has_extn("starttls"):
                    server.starttls(context=ssl.create_default_context())
                if self.user:
                    server.login(self.user, self.password)
                server.send_message(as_email(message, self.sender))
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {str(exc)[:200]}") from None


class HttpSmsGateway:
    """SMS_GATEWAY_URL: POST {"to", "text", "id"} as JSON, with SMS_GATEWAY_KEY as a bearer token; 2xx is accepted."""

    def __init__(self, url: str, key: str = "", timeout: float = 10.0):
        self.url, self.key, self.timeout = url, key, timeout

    def send(self, message: Message) -> None:
        body = json.dumps({"to": message.to, "text": message.sms, "id": message.message_id.strip("<>")},
                          ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            with urlopen(Request(self.url, data=body, headers=headers, method="POST"), timeout=self.timeout):
                pass
        except (URLError, OSError) as exc:  # HTTPError (4xx/5xx) is a URLError
            raise ChannelError(f"SMS gateway: {type(exc).__name__}: {str(exc)[:200]}") from None


class FileOutbox:
    """Writes each message as a file: email as .eml (open it in any mail program), SMS as .txt."""

    def __init__(self, directory: Path, channel: str, sender: str = SENDER):
        self.directory, self.channel, self.sender = Path(directory) / channel, channel, sender
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Message) -> None:
        # named by the suite's clock, as the Date inside says: a demo under MAWAEED_NOW sorts as it happened
        sent = (message.date or clock.now()).astimezone(LOCAL)
        name = f"{sent:%Y%m%dT%H%M%S}-{message.kind}-{message.message_id.strip('<>').split('@')[0][:12]}"
        if self.channel == "email":
            (self.directory / f"{name}.eml").write_bytes(as_email(message, self.sender).as_bytes())
        else:
            (self.directory / f"{name}.txt").write_text(f"To: {message.to}\n\n{message.sms}\n", encoding="utf-8")


def from_config(config: dict) -> dict:
    outbox = Path(config.get("MAWAEED_DATA_DIR") or "./var") / "outbox"
    sender = config.get("MAIL_FROM") or SENDER
    email = SmtpEmail(config["SMTP_URL"], sender) if config.get("SMTP_URL") else FileOutbox(outbox, "email", sender)
    sms = HttpSmsGateway(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_KEY", "")) \
        if config.get("SMS_GATEWAY_URL") else FileOutbox(outbox, "sms")
    log.info("notifications: email via %s, SMS via %s", type(email).__name__, type(sms).__name__)
    return {"email": email, "sms": sms}
