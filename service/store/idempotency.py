"""Idempotency-Key records: reserved before a POST runs, completed with its response."""

from __future__ import annotations

from typing import Any

import psycopg

# A reservation older than this belongs to a request that died; it may be retaken.
STALE_AFTER_SECONDS = 60


def reserve(
    conn: psycopg.Connection[Any], api_key_hash: str, key: str, request_hash: str
) -> dict[str, Any] | None:
    """Reserve `key`; None if reserved now, else the existing record."""
    row = conn.execute(
        """
        INSERT INTO idempotency_keys (api_key_hash, key, request_hash)
        VALUES (%(api_key_hash)s, %(key)s, %(request_hash)s)
        ON CONFLICT (api_key_hash, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, created_at = now()
            WHERE idempotency_keys.status_code IS NULL
              AND idempotency_keys.created_at < now() - make_interval(secs => %(stale)s)
        RETURNING key
        """,
        {
            "api_key_hash": api_key_hash,
            "key": key,
            "request_hash": request_hash,
            "stale": STALE_AFTER_SECONDS,
        },
    ).fetchone()
    if row is not None:
        return None
    return conn.execute(
        """
        SELECT request_hash, status_code, response_body, request_id
        FROM idempotency_keys
        WHERE api_key_hash = %(api_key_hash)s AND key = %(key)s
        """,
        {"api_key_hash": api_key_hash, "key": key},
    ).fetchone()


def complete(
    conn: psycopg.Connection[Any],
    api_key_hash: str,
    key: str,
    status_code: int,
    body: bytes,
    request_id: str,
) -> None:
    conn.execute(
        """
        UPDATE idempotency_keys
        SET status_code = %(status_code)s, response_body = %(body)s, request_id = %(request_id)s
        WHERE api_key_hash = %(api_key_hash)s AND key = %(key)s
        """,
        {
            "api_key_hash": api_key_hash,
            "key": key,
            "status_code": status_code,
            "body": body,
            "request_id": request_id,
        },
    )


def release(conn: psycopg.Connection[Any], api_key_hash: str, key: str) -> None:
    """Forget a reservation whose request failed, so a retry runs afresh."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE api_key_hash = %(api_key_hash)s AND key = %(key)s",
        {"api_key_hash": api_key_hash, "key": key},
    )


def delete_older_than(conn: psycopg.Connection[Any], hours: int) -> int:
    cur = conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %(hours)s)",
        {"hours": hours},
    )
    return cur.rowcount
