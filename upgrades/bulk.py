"""Set-based writes the ORM cannot express in one statement."""

from collections.abc import Iterable

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery


def insert_from_select(
    model: type[Model], columns: list[str], rows: QuerySet, *, skip_conflicts: bool = True
) -> int:
    """``INSERT INTO model (columns) <rows> [ON CONFLICT DO NOTHING]``; returns rows inserted.

    ``rows`` is a ``values_list`` queryset whose columns line up with ``columns``. The
    database copies the rows itself: no row travels through Python, and (by default) a
    row that would break a unique constraint is skipped, which makes a re-run harmless.

    ``skip_conflicts=False`` leaves out ``ON CONFLICT DO NOTHING``, for a caller that knows
    no row can conflict: PostgreSQL then inserts each row directly instead of checking
    its unique indexes first and confirming the row afterwards (a speculative insertion),
    and a row that does conflict fails the statement.
    """
    select_sql, params = rows.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) {select_sql}"
            + (" ON CONFLICT DO NOTHING" if skip_conflicts else ""),
            params,
        )
        return cursor.rowcount


# PostgreSQL's text form of an array (``{1,2,3}``), passed as one string parameter and
# cast in the statement (``%s::bigint[]``). psycopg2 turns a Python list into
# ``ARRAY[…]`` SQL, adapting each value in turn, and the server then parses and folds one
# expression per value; the text form is one string, which the server's array parser
# reads in one pass. One function per element type; no element may be None (SQL NULL),
# which none of the callers' columns hold.


def int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, map(int, values))) + "}"


_BOOL_ELEMENT = {True: "t", False: "f"}  # anything else (None) is a KeyError, not false


def bool_array(values: Iterable[bool]) -> str:
    return "{" + ",".join(_BOOL_ELEMENT[value] for value in values) + "}"


def text_array(values: Iterable[str]) -> str:
    """Each string double-quoted with backslash escapes, so a quote, a comma, a brace or
    the word NULL in a value stays part of the value. A batch repeats a few strings (the
    causes of its changes): each distinct one is quoted once."""
    quoted: dict[str, str] = {}
    elements = []
    for value in values:
        if value not in quoted:
            quoted[value] = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elements.append(quoted[value])
    return "{" + ",".join(elements) + "}"


def update_returning(lines: QuerySet, values: dict, returning: str) -> list:
    """``lines.update(**values)``, and each updated row's ``returning`` column after it:
    one ``UPDATE … RETURNING`` (PostgreSQL, and SQLite from 3.35), which Django's
    ``update()`` cannot say. The statement is Django's own; every value is a parameter."""
    query = lines.query.chain(UpdateQuery)
    query.add_update_values(values)
    compiler = query.get_compiler(lines.db)
    compiler.pre_sql_setup()
    try:
        statement, params = compiler.as_sql()
    except EmptyResultSet:  # e.g. ``__in=[]``: no row to update
        return []
    column = lines.model._meta.get_field(returning).column
    with connections[lines.db].cursor() as cursor:
        cursor.execute(f'{statement} RETURNING "{column}"', params)
        return [value for (value,) in cursor.fetchall()]


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
