"""The Stripe-Signature scheme, checked against stripe-python's own implementation."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from service.domain.signatures import WebhookSecrets, sign, verified_modes
from service.errors import SignatureInvalid

SECRET = "whsec_test_secret_value"
PAYLOAD = json.dumps({"id": "evt_1", "object": "event", "type": "x.y"}).encode()


def verify(payload, header, secrets, *, now, tolerance=300):
    """The modes verified when `secrets` are the test-mode secrets."""
    return verified_modes(
        payload, header, WebhookSecrets(test=tuple(secrets)), now=now, tolerance=tolerance
    )


def test_signed_header_is_accepted_by_stripe_sdk():
    now = int(time.time())
    header = sign(PAYLOAD, SECRET, now)
    event = stripe.Webhook.construct_event(PAYLOAD, header, SECRET)
    assert event["id"] == "evt_1"
    assert stripe.WebhookSignature.verify_header(PAYLOAD.decode(), header, SECRET, tolerance=300)


def test_stripe_sdk_signature_is_accepted():
    now = int(time.time())
    digest = stripe.WebhookSignature._compute_signature(f"{now}.{PAYLOAD.decode()}", SECRET)
    assert verify(PAYLOAD, f"t={now},v1={digest}", [SECRET], now=now) == {False}


def test_any_v1_against_any_secret_passes():
    now = int(time.time())
    good = sign(PAYLOAD, "whsec_new", now).split(",")[1]
    header = f"t={now},v1={'0' * 64},{good},v0=abc"
    verify(PAYLOAD, header, ["whsec_old", "whsec_new"], now=now)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "v1=abc",
        "t=notanumber,v1=abc",
    ],
)
def test_malformed_headers_are_refused(header):
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, header, [SECRET], now=int(time.time()))


def test_v0_only_is_refused():
    now = int(time.time())
    v1 = sign(PAYLOAD, SECRET, now).split("v1=")[1]
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, f"t={now},v0={v1}", [SECRET], now=now)


def test_tampered_payload_or_wrong_secret_is_refused():
    now = int(time.time())
    header = sign(PAYLOAD, SECRET, now)
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD + b" ", header, [SECRET], now=now)
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, header, ["whsec_other"], now=now)


def test_old_timestamp_is_refused_as_replay():
    now = int(time.time())
    header = sign(PAYLOAD, SECRET, now - 301)
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, header, [SECRET], now=now, tolerance=300)
    verify(PAYLOAD, sign(PAYLOAD, SECRET, now - 299), [SECRET], now=now, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(PAYLOAD, header, SECRET, tolerance=300)


def test_no_secrets_refuses_everything():
    now = int(time.time())
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, sign(PAYLOAD, SECRET, now), [], now=now)


def test_secret_is_used_as_text_not_decoded():
    now = int(time.time())
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{now}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert sign(PAYLOAD, SECRET, now) == f"t={now},v1={expected}"


def test_verified_modes_are_those_of_the_secrets_that_match():
    now = int(time.time())
    secrets = WebhookSecrets(test=("whsec_t",), live=("whsec_l1", "whsec_l2"), either_mode=())
    by = {s: sign(PAYLOAD, s, now).split(",")[1] for s in ("whsec_t", "whsec_l2", "whsec_x")}
    assert verified_modes(PAYLOAD, f"t={now},{by['whsec_t']}", secrets, now=now) == {False}
    assert verified_modes(PAYLOAD, f"t={now},{by['whsec_l2']}", secrets, now=now) == {True}
    both = f"t={now},{by['whsec_x']},{by['whsec_l2']},{by['whsec_t']}"
    assert verified_modes(PAYLOAD, both, secrets, now=now) == {False, True}
    either = WebhookSecrets(either_mode=("whsec_x",))
    assert verified_modes(PAYLOAD, f"t={now},{by['whsec_x']}", either, now=now) == {False, True}
    with pytest.raises(SignatureInvalid):
        verified_modes(PAYLOAD, f"t={now},{by['whsec_x']}", secrets, now=now)


def test_a_tolerance_of_zero_does_not_turn_replay_protection_off():
    now = int(time.time())
    with pytest.raises(SignatureInvalid):
        verify(PAYLOAD, sign(PAYLOAD, SECRET, now - 3600), [SECRET], now=now, tolerance=0)
