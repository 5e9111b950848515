"""Webhook endpoint URLs cannot reach inside: refused at registration in every notation
of an address, refused at connect time whatever a name resolves to, https in live
mode, and resolving a host counted against the delivery's deadline."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import stripe
from psycopg.rows import dict_row

from service.app import create_app
from service.operations.deliver import deliver_batch
from tests import factories
from tests.conftest import LIVE_KEY, TEST_KEY, ApiClient
from tests.dns_sandbox import post_in_sandbox, sandbox_missing


@pytest.fixture(scope="module")
def strict_api(settings: Any) -> Iterator[ApiClient]:
    """The API as deployed: TALLY_ALLOW_PRIVATE_WEBHOOK_URLS off."""
    app = create_app(dataclasses.replace(settings, allow_private_webhook_urls=False))
    try:
        yield ApiClient(app)
    finally:
        app.extensions["pool"].close()


@pytest.fixture(scope="module")
def public_endpoint(strict_api: ApiClient) -> Iterator[str]:
    created = strict_api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/hook", "enabled_events[]": "*"}
    )
    assert created.status_code == 200, created.json
    yield created.json["id"]
    strict_api.delete(f"/v1/webhook_endpoints/{created.json['id']}")


def _endpoints(db: Any) -> list[dict[str, Any]]:
    return db.execute(  # type: ignore[no-any-return]
        "SELECT id, livemode, url, deleted FROM webhook_endpoints ORDER BY seq"
    ).fetchall()


# -- at registration ------------------------------------------------------------------

# ASCII letters and digits to their full-width forms (U+FF10 on), which IDNA folds back.
FULLWIDTH = {c: 0xFF10 + c - ord("0") for c in range(ord("0"), ord("9") + 1)} | {
    c: 0xFF41 + c - ord("a") for c in range(ord("a"), ord("z") + 1)
}

INSIDE = [
    # IPv4 as inet_aton, getaddrinfo and curl read it
    pytest.param("http://0177.0.0.1/hook", id="octal"),
    pytest.param("http://0x7f.0.0.1/hook", id="hex-dotted"),
    pytest.param("http://0x7f000001/hook", id="hex"),
    pytest.param("http://2130706433/hook", id="decimal"),
    pytest.param("http://017700000001/hook", id="octal-whole"),
    pytest.param("http://0x7f.1/hook", id="hex-short"),
    pytest.param("http://127.1/hook", id="short"),
    pytest.param("http://10.1/hook", id="short-private"),
    pytest.param("http://0300.0250.1.1/hook", id="octal-private"),
    pytest.param("http://0/hook", id="zero"),
    pytest.param("http://127.0.0.1./hook", id="trailing-dot"),
    pytest.param("http://2852039166/latest/meta-data", id="metadata-decimal"),
    pytest.param("http://0xa9fea9fe/latest/meta-data", id="metadata-hex"),
    pytest.param("http://0251.0376.0251.0376/latest/meta-data", id="metadata-octal"),
    pytest.param("http://0x64400001/hook", id="cgnat-hex"),
    # what getaddrinfo's IDNA encoding folds to ASCII
    pytest.param(f"http://{'127.0.0.1'.translate(FULLWIDTH)}/hook", id="fullwidth-digits"),
    pytest.param("http://127\u30020\u30020\u30021/hook", id="ideographic-dots"),
    pytest.param(f"http://{'localhost'.translate(FULLWIDTH)}/hook", id="fullwidth-localhost"),
    pytest.param("http://localhost./hook", id="localhost-trailing-dot"),
    # IPv4 inside IPv6
    pytest.param("http://[::7f00:1]/hook", id="ipv4-compatible"),
    pytest.param("http://[::127.0.0.1]/hook", id="ipv4-compatible-dotted"),
    pytest.param("http://[::a9fe:a9fe]/latest/meta-data", id="ipv4-compatible-metadata"),
    pytest.param("http://[64:ff9b::7f00:1]/hook", id="nat64"),
    pytest.param("http://[64:ff9b::169.254.169.254]/latest/meta-data", id="nat64-metadata"),
    pytest.param("http://[64:ff9b::a00:1]/hook", id="nat64-private"),
    pytest.param("http://[64:ff9b:1:7f00:0:100::]/hook", id="nat64-local-use"),
    pytest.param("http://[64:ff9b:1::808:808]/hook", id="nat64-local-use-any"),
    pytest.param("http://[2002:7f00:1::1]/hook", id="6to4"),
    pytest.param("http://[2002:a9fe:a9fe::1]/latest/meta-data", id="6to4-metadata"),
    pytest.param("http://[2002:c0a8:101::]/hook", id="6to4-private"),
    pytest.param("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", id="teredo-loopback"),
    # the rest of what is inside, in the plain notation
    pytest.param("http://100.64.0.1/hook", id="cgnat"),
    pytest.param("http://169.254.169.254/latest/meta-data", id="metadata"),
    pytest.param("http://[fd00:ec2::254]/latest/meta-data", id="metadata-aws-ipv6"),
    pytest.param("http://[fe80::1]/hook", id="link-local"),
    pytest.param("http://[fe80::1%25eth0]/hook", id="link-local-zone"),
    pytest.param("http://[fc00::1]/hook", id="unique-local"),
    pytest.param("http://[fec0::1]/hook", id="site-local"),
    pytest.param("http://224.0.0.1/hook", id="multicast"),
    pytest.param("http://[ff02::1]/hook", id="multicast-ipv6"),
    pytest.param("http://240.0.0.1/hook", id="reserved"),
    pytest.param("http://255.255.255.255/hook", id="broadcast"),
    pytest.param("http://metadata.google.internal/computeMetadata/v1/", id="metadata-name"),
    # not an address, and not a name either
    pytest.param("http://1.2.3.4.5/hook", id="five-parts"),
    pytest.param("http://256.0.0.1/hook", id="part-too-big"),
    pytest.param("http://08.0.0.1/hook", id="bad-octal"),
    pytest.param("http://%31%32%37.0.0.1/hook", id="percent-encoded"),
]


@pytest.mark.parametrize("url", INSIDE)
def test_an_address_inside_is_refused_at_registration_in_every_notation(
    strict_api, db, public_endpoint, url
):
    before = _endpoints(db)
    # when an endpoint is created with the URL, or an endpoint's URL is changed to it
    created = strict_api.post("/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"})
    updated = strict_api.post(f"/v1/webhook_endpoints/{public_endpoint}", {"url": url})
    # then both are refused, naming url, and nothing is stored or changed
    for response in (created, updated):
        assert response.status_code == 400, response.json
        error = response.json["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "url_invalid",
            "url",
        )
    assert _endpoints(db) == before


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/stripe",
        "https://8.8.8.8/hook",
        "https://134744072/hook",  # 8.8.8.8, in decimal
        "https://[2606:4700::1111]/hook",
        "https://[2002:808:808::1]/hook",  # 6to4 of 8.8.8.8
        "https://[64:ff9b::808:808]/hook",  # NAT64 of 8.8.8.8 (what DNS64 answers)
        "https://0x.example/hook",  # a name whose first label looks like hex
    ],
)
def test_a_public_address_is_accepted_in_any_notation(strict_api, url):
    created = strict_api.post("/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"})
    assert created.status_code == 200, created.json
    assert created.json["url"] == url
    strict_api.delete(f"/v1/webhook_endpoints/{created.json['id']}")


# -- live mode uses https -------------------------------------------------------------


def test_a_live_endpoint_must_use_https_and_a_test_one_may_use_http(server, db):
    # The suite's app runs with TALLY_ALLOW_PRIVATE_WEBHOOK_URLS=1: a development
    # setting, which lifts the address rule and never the https rule of live mode.
    live = stripe.StripeClient(LIVE_KEY, base_addresses={"api": server}, max_network_retries=0)
    test = stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)
    plain = {"url": "http://hooks.example.com/stripe", "enabled_events": ["*"]}
    before = _endpoints(db)

    # when a live key creates an endpoint with an http URL, then it is refused
    with pytest.raises(stripe.InvalidRequestError) as refused:
        live.v1.webhook_endpoints.create(params=plain)
    assert (refused.value.http_status, refused.value.param) == (400, "url")
    assert "https" in str(refused.value.user_message)
    assert _endpoints(db) == before

    # and a live endpoint's URL cannot be changed to http either
    secure = live.v1.webhook_endpoints.create(
        params={**plain, "url": "https://hooks.example.com/s"}
    )
    test_endpoint = test.v1.webhook_endpoints.create(params=plain)
    try:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            live.v1.webhook_endpoints.update(secure.id, params={"url": plain["url"]})
        assert (refused.value.http_status, refused.value.param) == (400, "url")
        assert live.v1.webhook_endpoints.retrieve(secure.id).url == "https://hooks.example.com/s"
        # while a test-mode endpoint may use http
        assert test_endpoint.livemode is False and test_endpoint.url == plain["url"]
    finally:
        live.v1.webhook_endpoints.delete(secure.id)
        test.v1.webhook_endpoints.delete(test_endpoint.id)


# -- at connect time ---------------------------------------------------------------------

NO_SANDBOX = sandbox_missing()
needs_sandbox = pytest.mark.skipif(bool(NO_SANDBOX), reason=f"DNS sandbox: {NO_SANDBOX}")


@needs_sandbox
@pytest.mark.parametrize(
    "addresses",
    [
        pytest.param(["::7f00:1"], id="ipv4-compatible-loopback"),
        pytest.param(["64:ff9b::7f00:1"], id="nat64-loopback"),
        pytest.param(["64:ff9b::a9fe:a9fe"], id="nat64-metadata"),
        pytest.param(["64:ff9b:1::808:808"], id="nat64-local-use"),
        pytest.param(["2002:7f00:1::1"], id="6to4-loopback"),
        pytest.param(["2606:4700::1111", "2002:a00:1::1"], id="public-and-6to4-private"),
    ],
)
def test_a_name_resolving_inside_is_not_connected_to(addresses):
    # given a name that resolves, through a real DNS server, to addresses inside, each
    # one reachable (on the sandbox's loopback, with a receiver answering 200)
    # when a delivery POSTs to it
    result = post_in_sandbox(
        "http://hooks.example.com:{port}/stripe",
        records={"hooks.example.com": addresses},
        local_addresses=addresses,
    )
    # then it was refused before any connection
    assert result["status_code"] is None
    assert result["error"].startswith("refused: hooks.example.com resolves to a private")
    assert result["connected"] == []


@needs_sandbox
def test_a_name_resolving_to_a_public_address_is_delivered_to_in_the_sandbox():
    # the control of the test above: the same sandbox, a public address, a 200
    result = post_in_sandbox(
        "http://hooks.example.com:{port}/stripe",
        records={"hooks.example.com": ["2606:4700::1111"]},
        local_addresses=["2606:4700::1111"],
    )
    assert (result["status_code"], result["error"]) == (200, None)
    assert result["connected"] == ["2606:4700::1111"]


# -- resolving counts against the deadline -------------------------------------------------


@needs_sandbox
def test_a_dns_server_that_never_answers_holds_a_post_no_longer_than_its_timeout():
    # given a DNS server that never answers (glibc waits 5 s for it)
    # when a POST with a 1 s timeout goes to a name it should resolve
    result = post_in_sandbox(
        "http://hooks.example.com:{port}/stripe", records={}, silent=True, timeout=1
    )
    # then the POST gave up after about 1 s, as an error, having connected nowhere
    assert 0.9 <= result["elapsed"] < 2, result
    assert result["status_code"] is None and result["connected"] == []
    assert result["error"] == (
        "could not resolve hooks.example.com: no answer before the delivery's deadline"
    )


@pytest.fixture
def conn(service_urls: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        yield c


def test_a_stalled_resolution_is_recorded_as_a_failed_attempt_within_the_timeout(
    api, db, conn, monkeypatch
):
    # given an endpoint whose host name's resolution stalls (getaddrinfo blocks, as it
    # does on a resolver that never answers: in-process, so it runs where the sandbox
    # above cannot, and through the whole delivery down to the recorded attempt)
    stalled = threading.Event()
    release = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stalls.example.com":
            stalled.set()
            release.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    endpoint = api.post(
        "/v1/webhook_endpoints", {"url": "https://stalls.example.com/hook", "enabled_events[]": "*"}
    ).json
    try:
        factories.open_invoice(api, 700)
        [first, *_] = db.execute(
            "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s ORDER BY id",
            (endpoint["id"],),
        ).fetchall()
        # when it is delivered with a 1 s timeout
        started = time.monotonic()
        outcomes = deliver_batch(
            conn, [(first["id"], None)], timeout=1, schedule=(5,), allow_private=False
        )
        elapsed = time.monotonic() - started
        # then the delivery gave up after about 1 s, and recorded an error attempt
        assert stalled.is_set()
        assert outcomes == {first["id"]: "retrying"}
        assert 0.9 <= elapsed < 2.5, elapsed
        [attempt] = db.execute(
            "SELECT status_code, latency_ms, error FROM webhook_delivery_attempts"
            " WHERE delivery_id = %s",
            (first["id"],),
        ).fetchall()
        assert attempt["status_code"] is None and 900 <= attempt["latency_ms"] < 2500
        assert attempt["error"] == (
            "could not resolve stalls.example.com: no answer before the delivery's deadline"
        )
    finally:
        release.set()
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
