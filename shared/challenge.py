"""The release-day challenge: on days when bookings open for a popular service, MAWAEED_BOOKING_CHALLENGE=on makes
every new booking carry a solved proof-of-work (ALTCHA, self-hosted: no third party sees the person, nothing
tracks them). The browser spends a moment of CPU per booking; a script booking thousands spends thousands.
A challenge is signed with MAWAEED_CHALLENGE_KEY, expires after five minutes and is good for one booking."""
import base64
import datetime
import json

from altcha import ChallengeOptionsV1, create_challenge_v1, verify_solution_v1

from shared.errors import DomainError

LIFETIME = datetime.timedelta(minutes=5)
DIFFICULTY = 50_000  # the largest number a solver may have to try: about half a second in a phone's browser


class ChallengeRequired(DomainError):
    status, code = 403, "CHALLENGE_REQUIRED"


class Challenge:
    def __init__(self, key: str, limits, on: bool = False):
        self.key, self.limits, self.on = key, limits, on

    def new(self) -> dict:
        challenge = create_challenge_v1(ChallengeOptionsV1(
            hmac_key=self.key, max_number=DIFFICULTY,
            expires=datetime.datetime.now(datetime.timezone.utc) + LIFETIME))
        return {"algorithm": challenge.algorithm, "challenge": challenge.challenge, "maxnumber": challenge.max_number,
                "salt": challenge.salt, "signature": challenge.signature}

    def check(self, solution: str | None) -> None:
        """Nothing when the challenge is off or `solution` (the base64 ALTCHA payload) solves a fresh, unused one;
        else 403 CHALLENGE_REQUIRED."""
        if not self.on:
            return
        solved, _ = verify_solution_v1(solution, self.key, check_expires=True) if solution else (False, None)
        # once per challenge, however its solution is spelt (another base64 or JSON spelling is the same solution)
        if not solved or not self.limits.once("challenge", _challenge_of(solution), int(LIFETIME.total_seconds())):
            raise ChallengeRequired("Bookings need a solved challenge today: get one from /api/v1/challenge.",
                                    message_ar="يتطلب الحجز اليوم حل التحدي أولًا.")


def _challenge_of(solution: str) -> str:
    """The challenge a verified solution answers: its signed hash, the same for every spelling of the payload."""
    return json.loads(base64.b64decode(solution))["challenge"]
