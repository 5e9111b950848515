"""Idempotency-Key records: a key's stored response, written in its request's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import Conn

# A row without a response was reserved by the previous version, which committed the
# reservation first; older than this, its request died and the key may be taken over.
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


def claim(conn: Conn, api_key_hash: str, key: str) -> Claim:
    """Take the key's lock for the rest of the transaction, without waiting, and read its
    record. Not locked means a request with this key is running now."""
    (row,) = conn.execute(
        """
        SELECT pg_try_advisory_xact_lock(
                   hashtextextended('idempotency:' || %(api_key_hash)s || ':' || %(key)s, 0)
               ) AS locked,
               k.request_hash, k.status_code, k.response_body, k.request_id,
               k.created_at < now() - make_interval(secs => %(stale)s) AS stale
        FROM (VALUES (1)) AS one
        LEFT JOIN idempotency_keys k
            ON k.api_key_hash = %(api_key_hash)s AND k.key = %(key)s
        """,
        {"api_key_hash": api_key_hash, "key": key, "stale": STALE_AFTER_SECONDS},
    ).fetchall()
    return Claim(
        locked=row["locked"],
        request_hash=row["request_hash"],
        status_code=row["status_code"],
        response_body=None if row["response_body"] is None else bytes(row["response_body"]),
        request_id=row["request_id"],
        stale=bool(row["stale"]),
    )


def store_response(
    conn: Conn,
    *,
    api_key_hash: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: bytes,
    request_id: str,
) -> bool:
    """Store the key's response; False if another request stored one first (the PRIMARY
    KEY, not the lock, is what makes a second stored response impossible)."""
    row = conn.execute(
        """
        INSERT INTO idempotency_keys
            (api_key_hash, key, request_hash, status_code, response_body, request_id)
        VALUES (%(api_key_hash)s, %(key)s, %(request_hash)s, %(status_code)s, %(body)s,
                %(request_id)s)
        ON CONFLICT (api_key_hash, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, status_code = EXCLUDED.status_code,
                response_body = EXCLUDED.response_body, request_id = EXCLUDED.request_id,
                created_at = now()
            WHERE idempotency_keys.status_code IS NULL
              AND idempotency_keys.created_at < now() - make_interval(secs => %(stale)s)
        RETURNING key
        """,
        {
            "api_key_hash": api_key_hash,
            "key": key,
            "request_hash": request_hash,
            "status_code": status_code,
            "body": body,
            "request_id": request_id,
            "stale": STALE_AFTER_SECONDS,
        },
    ).fetchone()
    return row is not None


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
