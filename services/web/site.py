"""What every page family shares: the suite's API seen with the caller's own token and address."""
from shared.auth import PUBLIC, Principal
from services.web import signin
from services.web.client import Api


class Site:
    def api(self, request, authorization: str | None = None) -> Api:
        """The public API, as the person (or device) behind `request` calls it."""
        forwarded = ", ".join(filter(None, (request.headers.get("X-Forwarded-For"), request.remote_addr)))
        return Api(self.config.get("MAWAEED_API_URL") or self.config["MAWAEED_FEED_URL"],
                   authorization or request.headers.get("Authorization"), forwarded)

    def citizen(self, request) -> Principal:
        """The citizen behind `request`: the bearer token the request itself shows (an app calling the pages), else
        the one the browser's sign-in keeps in the `session` cookie; PUBLIC when neither is a citizen's."""
        shown = getattr(getattr(request, "caller", None), "principal", PUBLIC)
        if signin.is_citizen(shown):
            return shown
        if request.headers.get("Authorization"):   # another caller's token: never mixed with a session
            return PUBLIC
        signed_in = signin.session_citizen(request, self.config)
        return signed_in[1] if signed_in else PUBLIC

    def citizen_api(self, request) -> Api:
        """The API as the signed-in citizen calls it, for their own calls only (their bookings, booking and
        managing without a CPR): with the session's token as Bearer, or the request's own token; without a
        citizen, as the public."""
        if not request.headers.get("Authorization"):
            signed_in = signin.session_citizen(request, self.config)
            if signed_in:
                return self.api(request, authorization=f"Bearer {signed_in[0]}")
        return self.api(request)
