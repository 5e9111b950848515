"""When the sweeper last completed a pass: one row, written at the end of each pass
(operations/sweep.py), read by /metrics (store/backlog.py) and `tally sweeper`."""

from __future__ import annotations

from datetime import datetime

from service.db import Conn


def record_completed(conn: Conn) -> None:
    conn.execute(
        """
        INSERT INTO sweeper_passes (id, completed_at) VALUES (true, now())
        ON CONFLICT (id) DO UPDATE SET completed_at = excluded.completed_at
        """
    )


def last_completed(conn: Conn) -> datetime | None:
    row = conn.execute("SELECT completed_at FROM sweeper_passes").fetchone()
    return row["completed_at"] if row else None
