"""Newest-first cursor pagination shared by every list endpoint."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def list_page(
    conn: psycopg.Connection[Any],
    table: str,
    columns: sql.Composable,
    *,
    livemode: bool,
    filters: dict[str, Any],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of `table`'s rows in this mode matching `filters` (column = value).

    Returns the rows, newest first, and whether more lie beyond the page.
    A cursor id that does not exist in this mode matches nothing.
    """
    where = [sql.SQL("livemode = %(livemode)s")]
    params: dict[str, Any] = {"livemode": livemode, "limit": limit + 1}
    for column, value in filters.items():
        if value is not None:
            where.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = value
    cursor_seq = sql.SQL(
        "(SELECT seq FROM {} WHERE id = %(cursor)s AND livemode = %(livemode)s)"
    ).format(sql.Identifier(table))
    order = sql.SQL("seq DESC")
    if starting_after is not None:
        where.append(sql.SQL("seq < ") + cursor_seq)
        params["cursor"] = starting_after
    elif ending_before is not None:
        where.append(sql.SQL("seq > ") + cursor_seq)
        params["cursor"] = ending_before
        order = sql.SQL("seq ASC")
    query = sql.SQL(
        "SELECT {columns} FROM {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s"
    ).format(
        columns=columns,
        table=sql.Identifier(table),
        where=sql.SQL(" AND ").join(where),
        order=order,
    )
    rows = conn.execute(query, params).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if ending_before is not None:
        rows.reverse()
    return rows, has_more
