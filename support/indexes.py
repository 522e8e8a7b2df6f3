"""Index kinds the models share."""

from django.db import models


class UpperPatternIndex(models.Index):
    """An index on ``UPPER(column)`` for the admin's case-insensitive search.

    Django matches ``=field`` and ``^field`` search fields as ``UPPER(column::text) =
    UPPER('typed')`` and ``UPPER(column::text) LIKE UPPER('typed%')`` (see
    support.admin.IndexedSearchMixin). A prefix LIKE uses a btree only under the C
    collation or with the pattern operator class, so on PostgreSQL the expression gets
    ``text_pattern_ops`` (which answers ``=`` too); other databases get the plain
    expression index. Usage: ``UpperPatternIndex(Upper("code"), name=…)``.

    (Django's own ``OpClass`` needs ``django.contrib.postgres`` installed, and would
    break the SQLite schema of the embedded default.)
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        statement = super().create_sql(model, schema_editor, using, **kwargs)
        if schema_editor.connection.vendor == "postgresql":
            statement.parts["columns"] = _WithPatternOps(statement.parts["columns"])
        return statement


class _WithPatternOps:
    """The index's expression followed by ``text_pattern_ops``; keeps the references
    Django follows when a table or column is renamed."""

    def __init__(self, expressions):
        self.expressions = expressions

    def __getattr__(self, name):  # references_table, rename_column_references, …
        return getattr(self.expressions, name)

    def __str__(self) -> str:
        return f"{self.expressions} text_pattern_ops"
