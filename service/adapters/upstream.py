"""Upstream Stripe: fetch a PaymentIntent or customer by id, or cancel a PaymentIntent,
with the stripe SDK.

The only module that talks to Stripe. A fetch either returns the object as a dict,
returns None when upstream has no such object in the asked mode (404, deleted, or
the other mode), or raises UpstreamUnavailable (timeout, unreachable, 5xx, or any
other error answer): the caller never mistakes an upstream failure for "missing".
A cancel returns the canceled PaymentIntent, raises UpstreamRefused with Stripe's own
refusal, or UpstreamUnavailable when it cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FetchTimeout
from typing import TYPE_CHECKING, Any

import stripe

from service.errors import UpstreamRefused, UpstreamUnavailable

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCancelParams

    from service.config import Settings

log = logging.getLogger(__name__)

# A call abandoned at its deadline keeps its thread until requests' own timeout ends
# it; fetches happen only for ids Tally has never seen, and cancels only for Stripe's
# PaymentIntents, so a few threads are plenty.
FETCH_THREADS = 4


class Upstream:
    """Stripe, or anything speaking its API, as one secret key sees it."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float) -> None:
        self.timeout = timeout
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            # One fetch is one request, so the deadline holds; the retry belongs to
            # Tally's caller, whose SDK retries the 503 with its Idempotency-Key.
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        # requests' timeout bounds each connect and each read, not DNS nor the whole
        # exchange; the deadline on the future is what bounds the request's wait.
        self._threads = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="upstream")

    def payment_intent(self, pi_id: str, *, livemode: bool) -> dict[str, Any] | None:
        """The PaymentIntent as upstream has it, or None if it has none in `livemode`."""
        retrieve = self._client.v1.payment_intents.retrieve
        return self._fetch("payment_intent", pi_id, livemode, retrieve)

    def customer(self, customer_id: str, *, livemode: bool) -> dict[str, Any] | None:
        """The customer as upstream has it, or None if it has none in `livemode`."""
        return self._fetch("customer", customer_id, livemode, self._client.v1.customers.retrieve)

    def cancel_payment_intent(
        self, pi_id: str, *, reason: str | None, livemode: bool, idempotency_key: str | None
    ) -> dict[str, Any]:
        """Cancel the PaymentIntent upstream; return it as upstream now has it, canceled.

        Raises UpstreamRefused with Stripe's error when Stripe refuses (it succeeded or
        was canceled meanwhile, or Stripe has no such PaymentIntent), and
        UpstreamUnavailable when the answer is anything else than the canceled
        PaymentIntent of `livemode`: then the caller cannot know that it was canceled.
        """
        params: PaymentIntentCancelParams = {"cancellation_reason": reason} if reason else {}
        options: stripe.RequestOptions = (
            {"idempotency_key": idempotency_key} if idempotency_key else {}
        )
        cancel = self._client.v1.payment_intents.cancel
        try:
            obj = self._ask(
                "cancel", "payment_intent", pi_id, lambda: cancel(pi_id, params, options)
            )
        except stripe.StripeError as exc:
            refusal = exc.error
            # Stripe's answer to this request (not to Tally's key, nor a proxy's page).
            if exc.http_status in (400, 402, 404) and refusal is not None and refusal.message:
                raise UpstreamRefused(
                    f"Stripe refused to cancel the PaymentIntent: {refusal.message}",
                    status=exc.http_status,
                    type_=refusal.type or "invalid_request_error",
                    param=refusal.param,
                    code=refusal.code,
                ) from exc
            why = f"unusable answer, HTTP {exc.http_status}"
            raise self._unavailable("cancel", "payment_intent", pi_id, why, exc) from exc
        if obj.get("livemode") is not livemode or obj.get("status") != "canceled":
            why = f"answered a {obj.get('status')!r} PaymentIntent"
            raise self._unavailable("cancel", "payment_intent", pi_id, why)
        return obj

    def _fetch(
        self,
        kind: str,
        object_id: str,
        livemode: bool,
        retrieve: Callable[[str], stripe.StripeObject],
    ) -> dict[str, Any] | None:
        try:
            obj = self._ask("fetch", kind, object_id, lambda: retrieve(object_id))
        except stripe.StripeError as exc:
            # Stripe's "no such object"; a bare 404 (a wrong base, a proxy) is a failure.
            if exc.http_status == 404 and exc.code == "resource_missing":
                return None
            why = f"unusable answer, HTTP {exc.http_status}"
            raise self._unavailable("fetch", kind, object_id, why, exc) from exc
        if obj.get("deleted") or obj.get("livemode") is not livemode:
            return None
        return obj

    def _ask(
        self, action: str, kind: str, object_id: str, call: Callable[[], stripe.StripeObject]
    ) -> dict[str, Any]:
        """Stripe's answer, the object `kind` `object_id`, within the deadline; raises
        UpstreamUnavailable when there is none, and Stripe's error answers as they are."""
        future = self._threads.submit(call)
        try:
            found = future.result(timeout=self.timeout)
        except FetchTimeout:
            future.cancel()
            why = f"no answer in {self.timeout:g} s"
            raise self._unavailable(action, kind, object_id, why) from None
        except stripe.APIConnectionError as exc:
            raise self._unavailable(action, kind, object_id, "unreachable", exc) from exc
        obj = found.to_dict()
        if obj.get("object") != kind or obj.get("id") != object_id:
            why = f"answered a {obj.get('object')!r}"
            raise self._unavailable(action, kind, object_id, why)
        return obj

    def _unavailable(
        self, action: str, kind: str, object_id: str, why: str, exc: Exception | None = None
    ) -> UpstreamUnavailable:
        # The caller hears what kind of failure; the log keeps upstream's own words.
        log.warning("upstream %s of %s %s failed: %s", action, kind, object_id, exc or why)
        return UpstreamUnavailable(
            f"Could not {action} {kind} '{object_id}' at Stripe ({why}); Tally changed nothing. "
            "Retry the request.",
            param=kind,
        )


def from_settings(settings: Settings) -> Upstream | None:
    """The configured upstream, or None when no Stripe key is set."""
    if not settings.stripe_api_key:
        return None
    return Upstream(
        settings.stripe_api_key, settings.stripe_api_base, timeout=settings.stripe_api_timeout
    )
