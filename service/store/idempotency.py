"""Idempotency-Key records: a key's stored response, written in its request's transaction."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg.errors

from service.db import Conn

# A row without a response was reserved by the previous version, which committed the
# reservation first; older than this, its request died and the key may be taken over
# (release_stale).
STALE_AFTER_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Claim:
    """Whether this transaction holds the key, and what is stored under it, if anything."""

    locked: bool
    request_hash: str | None = None
    status_code: int | None = None
    response_body: bytes | None = None
    request_id: str | None = None
    stale: bool = False


_CLAIM = """
    SELECT pg_try_advisory_xact_lock(
               hashtextextended('idempotency:' || %(api_key_hash)s || ':' || %(key)s, 0)
           ) AS locked,
           k.request_hash, k.status_code, k.response_body, k.request_id,
           k.created_at < now() - make_interval(secs => %(stale)s) AS stale
    FROM (VALUES (1)) AS one
    LEFT JOIN idempotency_keys k
        ON k.api_key_hash = %(api_key_hash)s AND k.key = %(key)s
"""


def begin_and_claim(conn: Conn, api_key_hash: str, key: str) -> Claim:
    """Open a transaction on the autocommit `conn`, take the key's lock for the rest of
    it, without waiting, and read the key's record: one round trip (BEGIN and the claim
    sent as one pipeline). Not locked means a request with this key is running now."""
    with conn.pipeline():
        conn.execute("BEGIN")
        cursor = conn.execute(
            _CLAIM, {"api_key_hash": api_key_hash, "key": key, "stale": STALE_AFTER_SECONDS}
        )
    (row,) = cursor.fetchall()
    return Claim(
        locked=row["locked"],
        request_hash=row["request_hash"],
        status_code=row["status_code"],
        response_body=None if row["response_body"] is None else bytes(row["response_body"]),
        request_id=row["request_id"],
        stale=bool(row["stale"]),
    )


def release_stale(conn: Conn, api_key_hash: str, key: str) -> None:
    """Delete the key's stale reservation (a row without a response, left by a request
    of the previous version that died), so that this transaction's response can be
    stored under the key. The caller holds the key's lock."""
    conn.execute(
        "DELETE FROM idempotency_keys"
        " WHERE api_key_hash = %(api_key_hash)s AND key = %(key)s AND status_code IS NULL",
        {"api_key_hash": api_key_hash, "key": key},
    )


_STORE = """
    INSERT INTO idempotency_keys
        (api_key_hash, key, request_hash, status_code, response_body, request_id)
    VALUES (%(api_key_hash)s, %(key)s, %(request_hash)s, %(status_code)s, %(body)s,
            %(request_id)s)
"""


def is_stored_already(error: psycopg.errors.UniqueViolation) -> bool:
    """Whether `error`, raised by store_response or store_response_and_commit, says
    that another request stored a response under the key first."""
    return error.diag.table_name == "idempotency_keys"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a key's record keeps of the request that ran under it."""

    api_key_hash: str
    key: str
    request_hash: str
    status_code: int
    body: bytes
    request_id: str


def store_response(conn: Conn, response: StoredResponse) -> None:
    """Store the key's response. Raises UniqueViolation (is_stored_already) if another
    request stored one first: the PRIMARY KEY, not the lock, is what makes a second
    stored response impossible."""
    conn.execute(_STORE, _params(response))


def store_response_and_commit(conn: Conn, response: StoredResponse) -> None:
    """store_response, and COMMIT the transaction it is in, in one round trip (one
    pipeline). If the INSERT fails, the server skips the COMMIT: its error (a
    UniqueViolation, see is_stored_already) is raised here with the transaction still
    open and failed, for the caller to roll back."""
    with conn.pipeline():
        conn.execute(_STORE, _params(response))
        # conn.commit() would sync the pipeline on its own: a second round trip.
        conn.execute("COMMIT")


def _params(response: StoredResponse) -> dict[str, object]:
    return {
        "api_key_hash": response.api_key_hash,
        "key": response.key,
        "request_hash": response.request_hash,
        "status_code": response.status_code,
        "body": response.body,
        "request_id": response.request_id,
    }


def count_older_than(conn: Conn, hours: int) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM idempotency_keys"
        " WHERE created_at < now() - make_interval(hours => %(hours)s)",
        {"hours": hours},
    ).fetchone()
    return int(row["n"]) if row else 0


def delete_older_than(conn: Conn, hours: int) -> int:
    cur = conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %(hours)s)",
        {"hours": hours},
    )
    return cur.rowcount
