"""No key or secret, nor any fragment of one, in a log line or an error message."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import os
import random
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from devtools.localenv import free_port
from devtools.processes import Stack
from devtools.waiting import wait_for
from service import observability
from service.app import create_app
from service.config import Settings
from service.domain.signatures import WebhookSecrets
from tests.conftest import TEST_KEY, ApiClient

# A secret's fragment this long in a log line counts as a leak.
FRAGMENT = 6
PREFIXES = ("whsec_", "sk_test_", "sk_live_", "rk_test_", "rk_live_")
# Configured secrets of no recognisable shape: only their exact values can be found.
CONFIGURED = (
    "Kq2-vX9_Lm4-Rt7_Wz1-Hb6",
    'Zq8"Lm\\x/Wk+9=Rt!Vy3 Np5',
    "b4Tn7QeR2sUw9YhJ6kLp",
)


def _token_urlsafe(rng: random.Random, nbytes: int) -> str:
    """secrets.token_urlsafe's algorithm, seeded so a failure can be replayed."""
    return base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode()


def _secrets(count: int) -> Iterator[tuple[str, str]]:
    """(whole secret, its secret part): endpoint secrets as Tally makes them, API keys
    of Stripe's shape (alphanumeric), restricted keys, and the configured values."""
    rng = random.Random(18)
    alphanumeric = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for n in range(count):
        prefix = PREFIXES[n % len(PREFIXES)]
        if n % 3 == 0:
            body = "".join(rng.choice(alphanumeric) for _ in range(rng.choice((24, 32, 99))))
        else:
            body = _token_urlsafe(rng, rng.choice((8, 16, 24, 32, 48)))
        yield prefix + body, body
    for value in CONFIGURED:
        yield value, value


def _forms(secret: str) -> list[str]:
    """How a secret may be written: raw, URL-encoded in whole or in part, in a header."""
    basic = base64.b64encode(f"{secret}:".encode()).decode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        secret.replace("-", "%2D").replace("_", "%5F"),
        secret.replace("-", "%2d"),
        f"Authorization: Bearer {secret}",
        f"Authorization: Basic {basic}",
        f"Bearer%20{quote(secret, safe='')}",
        json.dumps({"api_key": secret, "nested": {"secret": secret}}),
        f"url=https://example.test/hook?secret={quote(secret, safe='')}&x=1",
        f"line one\n{secret}\nline three",
    ]


def _fragments(secret_part: str, basic: str) -> Iterator[str]:
    for text in (secret_part, json.dumps(secret_part)[1:-1], basic):
        for i in range(len(text) - FRAGMENT + 1):
            yield text[i : i + FRAGMENT]


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, Callable[[], str]]]:
    """A logger writing through the real handler and formatter, and what it wrote
    since last asked."""
    stream = io.StringIO()
    logger = logging.getLogger("tally.test_secret_leaks")
    handler = observability.json_handler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def written() -> str:
        text = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        return text

    yield logger, written
    logger.removeHandler(handler)
    logger.propagate = True


def test_no_secret_nor_any_fragment_of_one_reaches_a_log_line(json_log: Any) -> None:
    logger, written = json_log
    # given: the configured values are known to the formatter, as Settings tells it
    observability.redact_values(CONFIGURED)
    checked = 0
    for secret, secret_part in _secrets(3000):
        forms = _forms(secret)
        basic = base64.b64encode(f"{secret}:".encode()).decode()
        # A different form in each position, round the list.
        message, arg, extra, raised = (forms[(checked + k) % len(forms)] for k in range(4))
        template = "in the message " + message.replace("%", "%%") + " and in an argument %s"
        # when
        try:
            raise ValueError(f"upstream refused {raised}")
        except ValueError:
            logger.exception(
                template,
                arg,
                extra={"detail": extra, "headers": {"Authorization": f"Bearer {secret}"}},
            )
        logger.warning("every form %s", forms)
        text = written()
        # then
        leaked = [f for f in _fragments(secret_part, basic) if f in text]
        assert not leaked, f"{secret!r} leaked {leaked[:3]} in {text}"
        assert observability.REDACTED in text
        checked += 1
    assert checked == 3000 + len(CONFIGURED)


def test_an_app_teaches_the_logs_its_configured_secrets(settings: Any, json_log: Any) -> None:
    logger, written = json_log
    # given: a webhook secret and a Stripe key of no recognisable shape
    odd_secret = "hook-" + _token_urlsafe(random.Random(), 18)
    odd_key = "upstream-" + _token_urlsafe(random.Random(), 18)
    logger.warning("before: %s", odd_secret)
    assert odd_secret in written()
    # when: the web process starts with them
    app = create_app(
        dataclasses.replace(
            settings,
            webhook_secrets=WebhookSecrets(test=(odd_secret,)),
            stripe_api_key=odd_key,
        )
    )
    app.extensions["pool"].close()
    # then
    logger.warning("after: %s and %s", odd_secret, quote(odd_key, safe=""))
    text = written()
    assert odd_secret not in text
    assert odd_key not in text
    assert json.loads(text)["message"] == "after: [redacted] and [redacted]"


def test_database_and_redis_passwords_are_redacted(json_log: Any) -> None:
    logger, written = json_log
    # given: passwords in both DSN forms and in the Redis URL, one needing URL-encoding
    rng = random.Random(5432)
    db_password, redis_password = (_token_urlsafe(rng, 12) + "/@:" for _ in range(2))
    for database_url in (
        f"postgresql://tally:{quote(db_password, safe='')}@db.internal:5432/tally",
        f"host=db.internal user=tally password='{db_password}' dbname=tally",
    ):
        settings = Settings.from_env(
            {
                "TALLY_API_KEYS": TEST_KEY,
                "DATABASE_URL": database_url,
                "REDIS_URL": f"redis://:{quote(redis_password, safe='')}@cache.internal:6379/0",
            }
        )
        # when: the process teaches the logs its settings, and something logs the URLs
        observability.redact_values(settings.secrets)
        logger.warning("connecting to %s and %s", settings.database_url, settings.redis_url)
        text = written()
        # then: neither password shows, raw or URL-encoded; the hosts still do
        for password in (db_password, redis_password):
            assert password not in text
            assert quote(password, safe="") not in text
        assert "db.internal" in text and "cache.internal" in text


def test_redaction_leaves_ordinary_text_alone(json_log: Any) -> None:
    logger, written = json_log
    logger.info("invoice in_123 paid by pi_456 for evt_789")
    assert json.loads(written())["message"] == "invoice in_123 paid by pi_456 for evt_789"


def test_a_401_echoes_no_part_of_the_presented_key(app: Any) -> None:
    rng = random.Random(401)
    client = app.test_client()
    messages = set()
    for prefix in ("sk_test_", "sk_live_", "rk_test_", ""):
        presented = prefix + _token_urlsafe(rng, 24)
        basic = base64.b64encode(f"{presented}:".encode()).decode()
        for header in (f"Bearer {presented}", f"Basic {basic}"):
            # when
            response = client.get("/v1/customers", headers={"Authorization": header})
            # then
            assert response.status_code == 401
            error = response.get_json()["error"]
            assert error["type"] == "authentication_error"
            secret_part = presented.removeprefix(prefix)
            leaked = [secret_part[i : i + 4] for i in range(len(secret_part) - 3)]
            assert not [f for f in leaked if f in response.text], response.text
            messages.add(error["message"])
    # One fixed message, whatever the key: nothing of it shows through.
    assert messages == {"Invalid API Key provided."}


def test_a_database_refusal_names_no_constraint(private_app: Any, db: Any) -> None:
    # given: an operation that writes without checking first, so PostgreSQL refuses it
    db.execute(
        "INSERT INTO customers (id, livemode, created) VALUES ('cus_leaks_twice', false, 0)"
        " ON CONFLICT DO NOTHING"
    )

    @private_app.post("/v1/test_unchecked_write")
    def unchecked_write() -> Any:
        from service.api import deps

        with deps.get_conn().transaction():
            deps.get_conn().execute(
                "INSERT INTO customers (id, livemode, created) VALUES ('cus_leaks_twice', false, 0)"
            )
        return {}

    before = db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"]
    # when
    response = ApiClient(private_app, TEST_KEY).post("/v1/test_unchecked_write")
    # then: a 409 saying what happened, in no internal words
    assert response.status_code == 409, response.text
    message = response.get_json()["error"]["message"]
    assert "conflicts with an existing object" in message
    for internal in ("customers_pkey", "pkey", "UniqueViolation", "IntegrityError", "psycopg"):
        assert internal not in response.text
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == before


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_gunicorns_master_redacts_the_secrets_given_to_it(settings: Any, tmp_path: Any) -> None:
    # given: a secret of no recognisable shape passed with -e, which the master's debug
    # log prints in its configuration before any worker reads Settings
    odd_secret = "hook-" + _token_urlsafe(random.Random(), 18)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        TALLY_API_KEYS=TEST_KEY,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    stack = Stack(env, tmp_path)
    try:
        # when
        stack.start(
            "web",
            "web",
            replace={"--timeout 30": f"--timeout 30 --log-level debug "
                     f"-e STRIPE_WEBHOOK_SECRETS={odd_secret}"},
            env={"PORT": str(free_port())},
        )  # fmt: skip
        log = tmp_path / "web.log"
        wait_for(lambda: "Current configuration" in log.read_text(), 30, "the master's config")
    finally:
        stack.stop_all()
    # then
    text = log.read_text()
    assert "raw_env" in text
    assert odd_secret not in text
