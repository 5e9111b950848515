"""What every write pays for in the migrated schema: no index repeats another, and
event data is compressed with lz4 where the server has it."""

from __future__ import annotations


def test_no_index_is_the_leading_part_of_another_on_the_same_table(db):
    # Same access method, operator classes and predicate, and its columns the first
    # columns of the other index: every write maintains both, for lookups one serves.
    repeated = db.execute(
        """
        SELECT a.indexrelid::regclass::text AS index, b.indexrelid::regclass::text AS within
        FROM pg_index a
        JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
        JOIN pg_class ca ON ca.oid = a.indexrelid
        JOIN pg_class cb ON cb.oid = b.indexrelid
        JOIN pg_namespace n ON n.oid = ca.relnamespace
        WHERE n.nspname = current_schema()
          AND ca.relam = cb.relam
          AND NOT a.indisunique
          AND a.indexprs IS NULL AND b.indexprs IS NULL
          AND a.indpred IS NOT DISTINCT FROM b.indpred
          AND a.indnkeyatts <= b.indnkeyatts
          AND (a.indkey::int2[])[0:a.indnkeyatts - 1] = (b.indkey::int2[])[0:a.indnkeyatts - 1]
          AND (a.indclass::oid[])[0:a.indnkeyatts - 1] = (b.indclass::oid[])[0:a.indnkeyatts - 1]
        """
    ).fetchall()
    assert repeated == []


def test_event_data_is_compressed_with_lz4_where_the_server_has_it(db):
    has_lz4 = db.execute(
        "SELECT 'lz4' = ANY (enumvals) AS yes FROM pg_settings"
        " WHERE name = 'default_toast_compression'"
    ).fetchone()["yes"]
    compression = db.execute(
        "SELECT attcompression FROM pg_attribute"
        " WHERE attrelid = 'events'::regclass AND attname = 'data'"
    ).fetchone()["attcompression"]
    assert compression == ("l" if has_lz4 else "")
