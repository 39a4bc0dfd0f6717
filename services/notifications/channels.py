"""Where messages go: email over SMTP, SMS through an HTTP gateway, or, with neither configured (the embedded
default), a file outbox under MAWAEED_DATA_DIR/outbox/ where a person can read every message."""
import json
import logging
import re
import smtplib
import ssl
from email import encoders, policy
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.error import URLError
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import Request, urlopen

from services.notifications.messages import Message
from shared.clock import LOCAL, clock

log = logging.getLogger(__name__)
SENDER = formataddr(("مواعيد Mawaeed", "no-reply@mawaeed.local"))
WIRE = policy.compat32.clone(linesep="\r\n")  # as SMTP wants lines; headers written as they were set


class ChannelError(Exception):
    """The message was not accepted; the reason is safe to record (it names no recipient)."""


def _header(name: str, value: str) -> str:
    """Non-ASCII text as RFC 2047 encoded words that each carry their own spaces: the email package's folder
    (Python 3.11, every policy) puts a space between two words into the folding whitespace between two encoded
    words, which readers drop ("مجمع الدانة" arrives as "مجمعالدانة"). Header keeps it inside a word, and lines
    short enough to be written as they are."""
    return value if value.isascii() else Header(value, "utf-8", maxlinelen=76, header_name=name).encode()


def _address(value: str) -> str:
    """An address header's value, a non-ASCII display name (the sender "مواعيد Mawaeed") as encoded words."""
    return value if value.isascii() else formataddr(parseaddr(value))


def calendar_method(data: bytes) -> str:
    """The METHOD of an iCalendar file: its part's Content-Type says the same (RFC 5546 section 5)."""
    found = re.search(rb"^METHOD:([A-Z-]+)\r?$", data, re.MULTILINE)
    return found.group(1).decode() if found else "PUBLISH"


def _part(part: MIMEBase) -> MIMEBase:
    del part["MIME-Version"]  # said once, at the top
    return part


def as_email(message: Message, sender: str) -> MIMEBase:
    """The email of a message: its text and HTML as alternatives, then any attachments (the .ics); `as_bytes()`
    gives it as SMTP sends it (CRLF lines).

    Built with the email package's legacy classes, whose headers are strings kept as given: the modern API
    parses and refolds every header it is handed, which cost more than all the rest of sending an email."""
    email = MIMEMultipart("alternative", _subparts=[  # base64 text: Arabic as 7-bit lines any server takes
        _part(MIMEText(message.text, "plain", "utf-8")), _part(MIMEText(message.html, "html", "utf-8"))])
    if message.attachments:
        email = MIMEMultipart("mixed", _subparts=[_part(email)])
        for filename, content_type, data in message.attachments:
            maintype, subtype = content_type.split("/")
            # a text part (the .ics: its LOCATION and SUMMARY may be Arabic) says its charset, or readers take it
            # as ASCII; calendar clients act on the part's method (RFC 6047 section 2.4)
            params = {"charset": "utf-8"} if maintype == "text" else {}
            if content_type == "text/calendar":
                params["method"] = calendar_method(data)
            attachment = _part(MIMEBase(maintype, subtype, **params))
            attachment.set_payload(data)
            encoders.encode_base64(attachment)
            attachment.add_header("Content-Disposition", "attachment", filename=filename)
            email.attach(attachment)
    email["From"] = _address(sender)
    email["To"] = _address(message.to)
    email["Subject"] = _header("Subject", message.subject)
    # RFC 5322 requires a Date: the suite's clock (MAWAEED_NOW in demos), written in the centres' time zone
    email["Date"] = format_datetime((message.date or clock.now()).astimezone(LOCAL))
    email["Message-ID"] = message.message_id  # the same for a message sent twice: mail clients fold duplicates
    email["Content-Language"] = message.language
    email.policy = WIRE
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
                server.sendmail(parseaddr(self.sender)[1], [message.to], as_email(message, self.sender).as_bytes())
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
