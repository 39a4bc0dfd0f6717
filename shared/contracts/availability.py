"""Contracts of the availability service: the catalogue of directorates, branches and their schedules."""
from marshmallow import Schema, fields, validate

from shared.contracts import contract, upcaster
from shared.contracts.fields import Id, Name
from shared.schedule import DEFAULT_WAIT_TARGETS, WEEKDAYS

HHMM = validate.Regexp(r"([01][0-9]|2[0-3]):[0-5][0-9]\Z")  # ASCII digits; \Z: no trailing newline


@contract("availability.DirectorateRegistered", 1, "A directorate joined the deployment, or its names changed.")
class DirectorateRegisteredV1(Schema):
    directorate = Id()
    name_en = Name()
    name_ar = Name()


@contract("availability.BranchRegistered", 1,
          "A branch (service centre) opened for bookings, or its names or booking window changed.")
class BranchRegisteredV1(Schema):
    branch = Id()
    directorate = Id()
    name_en = Name()
    name_ar = Name()
    min_notice_minutes = fields.Integer(required=True, validate=validate.Range(min=0))
    max_days_ahead = fields.Integer(required=True, validate=validate.Range(min=1, max=366))


def Address(**kw):
    """A street address as people write it in Bahrain (building, road, block, area); empty only when the branch was
    registered before addresses were recorded (a v1 event, upcast)."""
    return fields.String(required=True, validate=validate.Length(max=300), **kw)


@contract("availability.BranchRegistered", 2,
          "A branch (service centre) opened for bookings, or its names, street address or booking window changed.")
class BranchRegisteredV2(BranchRegisteredV1):
    address_en = Address()
    address_ar = Address()


@upcaster("availability.BranchRegistered", 1)
def branch_registered_v1_to_v2(payload: dict) -> dict:
    """Before v2 no address was recorded: empty until the catalogue file's next sync registers the branch again."""
    return {**payload, "address_en": "", "address_ar": ""}


@contract("availability.ServiceOffered", 1, "A branch offers a service, with how long one visit takes.")
class ServiceOfferedV1(Schema):
    branch = Id()
    service = Id()
    name_en = Name()
    name_ar = Name()
    duration_minutes = fields.Integer(required=True, validate=validate.Range(min=5, max=240))
    ticket_prefix = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]$"))


class Period(Schema):
    opens = fields.String(required=True, validate=HHMM)
    closes = fields.String(required=True, validate=HHMM)


@contract("availability.OpeningHoursSet", 1,
          "A branch's weekly opening hours, local time; a weekday without periods is closed.")
class OpeningHoursSetV1(Schema):
    branch = Id()
    week = fields.Dict(keys=fields.String(validate=validate.OneOf(WEEKDAYS)),
                       values=fields.List(fields.Nested(Period)), required=True)


@contract("availability.HolidayDeclared", 1, "A branch is closed on a date (a public holiday).")
class HolidayDeclaredV1(Schema):
    branch = Id()
    date = fields.Date(required=True)
    name_en = Name()
    name_ar = Name()


@contract("availability.CounterCapacitySet", 1,
          "How many counters serve a service at a branch, and how many of them take online bookings.")
class CounterCapacitySetV1(Schema):
    branch = Id()
    service = Id()
    counters = fields.Integer(required=True, validate=validate.Range(min=0, max=200))
    online_capacity = fields.Integer(required=True, validate=validate.Range(min=0, max=200))


@contract("availability.QueuePolicySet", 1,
          "How a branch runs its waiting room: the check-in window, walk-in quotas, fairness and recalls.")
class QueuePolicySetV1(Schema):
    branch = Id()
    check_in_early_minutes = fields.Integer(required=True, validate=validate.Range(min=0, max=240))
    check_in_late_minutes = fields.Integer(required=True, validate=validate.Range(min=0, max=240))
    on_time_grace_minutes = fields.Integer(required=True, validate=validate.Range(min=0, max=120))
    appointments_per_walk_in = fields.Integer(required=True, validate=validate.Range(min=1, max=50))
    max_recalls = fields.Integer(required=True, validate=validate.Range(min=0, max=10))
    recall_interval_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=3600))
    walk_in_quota = fields.Dict(keys=fields.String(), values=fields.Integer(validate=validate.Range(min=0)),
                                required=True)


class ServiceWaitTargets(Schema):
    """Waiting-time targets: minutes from checking in to the first call, per kind of visit, and the share of the
    people served that should be called within them (the service level). Each is optional: what is left out
    holds from the level above (a service's from its branch's, a branch's from the defaults)."""
    appointment_wait_minutes = fields.Integer(strict=True, validate=validate.Range(min=1, max=1440))
    walk_in_wait_minutes = fields.Integer(strict=True, validate=validate.Range(min=1, max=1440))
    service_level = fields.Float(validate=validate.Range(min=0, max=1))


class WaitTargets(ServiceWaitTargets):
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceWaitTargets))


@contract("availability.QueuePolicySet", 2,
          "How a branch runs its waiting room: the check-in window, walk-in quotas, fairness and recalls, and the "
          "waiting-time targets it is measured against (optional: 10 minutes for appointments, 30 for walk-ins, "
          "80% within them, where not set).")
class QueuePolicySetV2(QueuePolicySetV1):
    targets = fields.Nested(WaitTargets, load_default=lambda: dict(DEFAULT_WAIT_TARGETS))  # left out: the defaults


@upcaster("availability.QueuePolicySet", 1)
def queue_policy_set_v1_to_v2(payload: dict) -> dict:
    """Before v2 no targets travelled: the defaults, the targets every branch was measured against."""
    return {**payload, "targets": dict(DEFAULT_WAIT_TARGETS)}


# -- the catalogue shrinks: what the file no longer has (catalogue_file.changes) ---------------------------

@contract("availability.ServiceWithdrawn", 1,
          "A branch no longer offers a service: it has no slots and is not listed there; the booking service "
          "cancels the service's bookings there that have not started (reason service_withdrawn).")
class ServiceWithdrawnV1(Schema):
    branch = Id()
    service = Id()


@contract("availability.BranchRetired", 1,
          "A branch closed down for good: it keeps its names for history, but has no slots and is not listed; the "
          "booking service cancels its bookings that have not started (reason branch_retired). Registering it "
          "again reopens it.")
class BranchRetiredV1(Schema):
    branch = Id()


@contract("availability.HolidayCancelled", 1, "A holiday declared for a branch was called off: the day opens again.")
class HolidayCancelledV1(Schema):
    branch = Id()
    date = fields.Date(required=True)


@contract("availability.ReleaseDelaySet", 1,
          "How long a place freed by a cancellation at a branch stays taken before anyone may book it again "
          "(against trading places); 0, the default for a branch that never had this event, frees it at once.")
class ReleaseDelaySetV1(Schema):
    branch = Id()
    release_delay_minutes = fields.Integer(required=True, validate=validate.Range(min=0, max=1440))
