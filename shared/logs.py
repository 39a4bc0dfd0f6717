"""Logging for every Mawaeed process."""
import logging
import os


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """nameko logs every refused request ("(expected) error") with a traceback; a 409 is not a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("nameko.containers").addFilter(ExpectedErrorsWithoutTraceback())
    # one line per HTTP request is the access log's job, not the service log's
    logging.getLogger("nameko.web.server").setLevel(os.environ.get("ACCESS_LOG_LEVEL", "WARNING"))
