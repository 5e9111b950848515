"""Tally's errors, each carrying the Stripe error shape it renders as."""

from __future__ import annotations

from typing import ClassVar


class TallyError(Exception):
    """Base: an error the API renders as Stripe's {"error": {...}} object."""

    status: int = 400
    type: str = "invalid_request_error"
    default_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"type": self.type, "message": self.message}
        if self.code:
            body["code"] = self.code
        if self.param:
            body["param"] = self.param
        return {"error": body}


class InvalidRequest(TallyError):
    """A parameter is missing, malformed or not allowed in this state."""


class InvalidParameter(InvalidRequest):
    """A parameter failed validation, so the operation never began. Stripe saves no
    idempotent result for it, and neither does Tally (service/api/idempotency.py)."""


class UnknownParameter(InvalidParameter):
    """A parameter the endpoint does not take."""

    default_code = "parameter_unknown"


class ResourceMissing(InvalidRequest):
    """An id in the body names nothing this key can see (400, as Stripe does)."""

    default_code = "resource_missing"


class NotFound(TallyError):
    """The object in the URL path does not exist for this key (404)."""

    status = 404
    default_code = "resource_missing"


class PaymentStateConflict(TallyError):
    """The object's state forbids the move (Stripe answers these with 400)."""

    default_code = "invoice_not_editable"


class AuthenticationFailed(TallyError):
    """No key, or a key Tally does not know."""

    status = 401
    type = "authentication_error"


class IdempotencyMismatch(TallyError):
    """An Idempotency-Key reused with other parameters."""

    type = "idempotency_error"


class IdempotencyInProgress(TallyError):
    """An Idempotency-Key whose first request is still running."""

    status = 409
    type = "idempotency_error"
    default_code = "idempotency_key_in_use"


class ConstraintConflict(TallyError):
    """A write collided with an existing row (a UNIQUE constraint); a retry may succeed."""

    status = 409
    default_code = "resource_already_exists"


class PayloadTooLarge(TallyError):
    """The request body exceeds what Tally accepts."""

    status = 413


class ServiceUnavailable(TallyError):
    """A dependency (PostgreSQL) is unreachable; the caller should retry."""

    status = 503
    type = "api_error"


class UpstreamUnavailable(ServiceUnavailable):
    """Upstream Stripe timed out, was unreachable or answered an error; nothing was
    changed, and the caller should retry. A 503 like PostgreSQL's: the stripe SDK retries
    every 5xx, and 502/504 are what a proxy in front of Tally answers when Tally itself
    is down, which on a dashboard should not look like Stripe being down."""


class UpstreamRefused(TallyError):
    """Upstream Stripe refused the request (a PaymentIntent that succeeded meanwhile, say):
    Stripe's own error, passed to the caller as Stripe gave it; nothing was changed."""

    def __init__(
        self, message: str, *, status: int, type_: str, param: str | None, code: str | None
    ):
        super().__init__(message, param=param, code=code)
        self.status = status
        self.type = type_


class SignatureInvalid(InvalidRequest):
    """An inbound webhook whose Stripe-Signature does not verify."""

    default_code = "signature_invalid"


class RateLimited(TallyError):
    """Too many requests with one key; the caller should retry after `retry_after` seconds."""

    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
