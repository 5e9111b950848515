"""Webhook endpoints: where Tally delivers its events. Deleting is a soft delete, so
their deliveries keep their foreign key. Rows are locked FOR NO KEY UPDATE, which a
transaction writing a delivery (FOR KEY SHARE, its foreign key) does not hold up:
store/deliveries.py says why that matters."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from service.db import Conn

# An endpoint enabled by an operator starts afresh: its failures so far do not open its
# circuit or count towards disabling it again.
CIRCUIT_CLOSED = "consecutive_failures = 0, failing_since = NULL, circuit_open_until = NULL"


def insert(conn: Conn, endpoint: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        """
        INSERT INTO webhook_endpoints (id, livemode, url, secret, enabled_events, description,
            api_version, metadata, created)
        VALUES (%(id)s, %(livemode)s, %(url)s, %(secret)s, %(enabled_events)s, %(description)s,
            %(api_version)s, %(metadata)s, %(created)s)
        RETURNING secret, id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        """,
        {**endpoint, "metadata": Jsonb(endpoint["metadata"])},
    ).fetchall()
    return row


def get(conn: Conn, endpoint_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        FROM webhook_endpoints
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        """,
        {"id": endpoint_id, "livemode": livemode},
    ).fetchone()


def update(
    conn: Conn, endpoint_id: str, livemode: bool, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Apply `changes` (url, enabled_events, description, metadata, status) to a live
    endpoint; enabling it closes its circuit."""
    allowed = ("url", "enabled_events", "description", "metadata", "status")
    sets: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
        for k in allowed
        if k in changes
    ]
    if changes.get("status") == "enabled":
        sets.append(sql.SQL(CIRCUIT_CLOSED))
    if not sets:
        return get(conn, endpoint_id, livemode)
    params = {**changes, "id": endpoint_id, "livemode": livemode}
    if "metadata" in params:
        params["metadata"] = Jsonb(params["metadata"])
    query = sql.SQL(
        """
        UPDATE webhook_endpoints SET {sets}
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        RETURNING id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        """
    ).format(sets=sql.SQL(", ").join(sets))
    return conn.execute(query, params).fetchone()


def delete(conn: Conn, endpoint_id: str, livemode: bool) -> bool:
    row = conn.execute(
        """
        UPDATE webhook_endpoints SET deleted = true
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        RETURNING id
        """,
        {"id": endpoint_id, "livemode": livemode},
    ).fetchone()
    return row is not None


def disable_if_failing_since(conn: Conn, endpoint_id: str, *, delivery_id: int) -> bool:
    """Disable the endpoint if nothing was delivered to it since `delivery_id`'s first
    attempt (it has then failed for that delivery's whole retry schedule)."""
    row = conn.execute(
        """
        UPDATE webhook_endpoints e SET status = 'disabled'
        WHERE e.id = %(endpoint)s AND e.status = 'enabled'
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries d
              WHERE d.endpoint_id = e.id
                AND d.delivered_at >= (SELECT min(attempted_at) FROM webhook_delivery_attempts
                                       WHERE delivery_id = %(delivery)s))
        RETURNING id
        """,
        {"endpoint": endpoint_id, "delivery": delivery_id},
    ).fetchone()
    return row is not None


def release(
    conn: Conn,
    endpoint_id: str,
    *,
    claim: int,
    consecutive_failures: int | None,
    open_for: float | None,
    disable_after: tuple[int, float],
) -> bool | None:
    """End the hold of the batch that claimed the endpoint under `claim`, and set its
    circuit: `consecutive_failures` POSTs in a row unanswered (0 closes the circuit;
    None, the batch POSTed nothing: unchanged) and no batch for `open_for` seconds
    (None: the circuit is closed). An endpoint unanswered for `disable_after` (so many POSTs
    in a row, over so many seconds) is disabled. Returns whether it was disabled now,
    or None when the hold was taken over meanwhile (its holder records instead)."""
    row = conn.execute(
        """
        UPDATE webhook_endpoints e
        SET sending_until = NULL,
            consecutive_failures = coalesce(%(failures)s, e.consecutive_failures),
            failing_since = CASE WHEN %(failures)s IS NULL THEN e.failing_since
                                 WHEN %(failures)s = 0 THEN NULL
                                 ELSE coalesce(e.failing_since, now()) END,
            circuit_open_until = CASE
                WHEN %(failures)s IS NULL THEN e.circuit_open_until
                ELSE now() + make_interval(secs => %(open_for)s::float8) END,
            status = CASE WHEN %(failures)s >= %(disable_failures)s
                               AND e.failing_since
                                   <= now() - make_interval(secs => %(disable_seconds)s::float8)
                          THEN 'disabled' ELSE e.status END
        FROM (SELECT id, status FROM webhook_endpoints WHERE id = %(id)s FOR NO KEY UPDATE)
            AS before
        WHERE e.id = before.id
          AND (extract(epoch FROM e.sending_until) * 1000000)::bigint = %(claim)s
        RETURNING e.status <> before.status AS disabled
        """,
        {
            "id": endpoint_id,
            "claim": claim,
            "failures": consecutive_failures,
            "open_for": open_for,
            "disable_failures": disable_after[0],
            "disable_seconds": disable_after[1],
        },
    ).fetchone()
    return None if row is None else bool(row["disabled"])


def count_disabled(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM webhook_endpoints WHERE status = 'disabled' AND NOT deleted"
    ).fetchone()
    return int(row["n"]) if row else 0


def find(conn: Conn, endpoint_id: str) -> dict[str, Any] | None:
    """An endpoint whatever its mode, deleted ones included (for operators)."""
    return conn.execute(
        """
        SELECT id, livemode, url, status, deleted
        FROM webhook_endpoints WHERE id = %(id)s
        """,
        {"id": endpoint_id},
    ).fetchone()


def subscribed(conn: Conn, *, livemode: bool, event_type: str) -> list[str]:
    """The enabled endpoints of this mode that take events of `event_type`, oldest first."""
    rows = conn.execute(
        """
        SELECT id FROM webhook_endpoints
        WHERE livemode = %(livemode)s AND status = 'enabled' AND NOT deleted
          AND enabled_events && ARRAY['*', %(type)s::text]
        ORDER BY seq
        """,
        {"livemode": livemode, "type": event_type},
    ).fetchall()
    return [r["id"] for r in rows]


def enable(conn: Conn, endpoint_id: str) -> dict[str, Any] | None:
    """Set a live (not deleted) endpoint's status to enabled, whatever its mode, and close
    its circuit; returns it with its status before, or None if there is no such endpoint."""
    query = sql.SQL(
        """
        UPDATE webhook_endpoints e SET status = 'enabled', {closed}
        FROM (SELECT id, status FROM webhook_endpoints
              WHERE id = %(id)s AND NOT deleted FOR NO KEY UPDATE) AS before
        WHERE e.id = before.id
        RETURNING e.id, e.livemode, e.url, e.status, before.status AS previous_status
        """
    ).format(closed=sql.SQL(CIRCUIT_CLOSED))
    return conn.execute(query, {"id": endpoint_id}).fetchone()
