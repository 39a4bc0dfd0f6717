"""What every page family shares: the suite's API seen with the caller's own token and address."""
from services.web.client import Api


class Site:
    def api(self, request, authorization: str | None = None) -> Api:
        """The public API, as the person (or device) behind `request` calls it."""
        forwarded = ", ".join(filter(None, (request.headers.get("X-Forwarded-For"), request.remote_addr)))
        return Api(self.config.get("MAWAEED_API_URL") or self.config["MAWAEED_FEED_URL"],
                   authorization or request.headers.get("Authorization"), forwarded)
