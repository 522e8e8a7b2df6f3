"""Set-based writes the ORM cannot express in one statement."""

from django.db import connection
from django.db.models import Model, QuerySet


def insert_from_select(model: type[Model], columns: list[str], rows: QuerySet) -> int:
    """``INSERT INTO model (columns) <rows> ON CONFLICT DO NOTHING``; returns rows inserted.

    ``rows`` is a ``values_list`` queryset whose columns line up with ``columns``. The
    database copies the rows itself: no row travels through Python, and a row that would
    break a unique constraint is skipped, which makes a re-run harmless.
    """
    select_sql, params = rows.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) {select_sql} ON CONFLICT DO NOTHING",
            params,
        )
        return cursor.rowcount


def refresh_statistics(*models: type[Model]) -> None:
    """``ANALYZE`` the tables of ``models`` now (PostgreSQL; nothing elsewhere).

    After a declaration inserted a million grants, the planner still believes the
    grants table small until autovacuum analyses it, minutes later, and plans the
    notices' reads as scans of every grant: measured 160 e-mails/s before and 330/s
    after (bench/notifications.py, 1,000,000 lines). Analysing samples a fixed number
    of rows: a fraction of a second whatever the table's size.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
