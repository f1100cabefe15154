"""A values() queryset compiled to SQL once and run many times with other values in its slots.

Compiling a queryset with several subqueries costs more CPU than running it when the statement is an index lookup
(the personalization API's profile lookup). ``PreparedValues`` compiles a queryset built with ``slot(i)``
placeholders where the varying values go, remembers where those placeholders landed among the SQL parameters,
and runs the same SQL with the real values, returning the rows as values() would (the fields' converters applied).

Rules: a slot must be a whole parameter (``filter(x=slot(0))`` or ``x__in=[slot(0), slot(1)]``; never inside a
pattern such as ``__contains``), and each slot appears at least once. Anything else in the queryset is fixed when
it is prepared, so it must not hold the current time (use ``django.db.models.functions.Now``). Keep prepared
queries in a bounded cache keyed by what shapes them (for ``__in``, the number of values).

On PostgreSQL the statement is also prepared on the server (psycopg's ``prepare=True`` with server-side binding),
so PostgreSQL plans it once per connection instead of on every call: planning the personalization lookup took
more of PostgreSQL's CPU than running it. Django leaves prepared statements off for its own queries, for
connection poolers; behind PgBouncer in transaction mode, use PgBouncer 1.21 or later with
``max_prepared_statements`` set.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import QuerySet


class PreparingCursor(ServerBindingCursor):
    """Django's server-side binding cursor for psycopg 3, preparing every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def server_prepare_allow(connection) -> None:
    """Connect, and let psycopg prepare statements on the server for this connection's psycopg cursors with
    server-side binding (``execute(..., prepare=True)``). Django turns preparation off on its connections (a
    threshold of None), which also silently ignores an explicit ``prepare=True``; a threshold lets it through.
    Django's own client-side binding cursors never prepare, whatever the threshold."""
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        connection.connection.prepare_threshold = 5


@contextmanager
def raw_cursor(connection, *, prepare: bool = True):
    """A plain psycopg cursor (server-side binding, ``%b`` placeholders for binary parameters) on Django's
    PostgreSQL connection and in its transaction, without Django's cursor wrapper: for constant hand-written
    statements on hot paths, where the wrapper's per-call work costs more than the statement. Database errors come
    out as Django's. With ``prepare``, ``execute(..., prepare=True)`` prepares on the server (see
    ``server_prepare_allow``)."""
    import psycopg

    if prepare:
        server_prepare_allow(connection)
    else:
        connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def prepared_execute(connection, sql: str, params: list) -> list[tuple]:
    """Run one constant statement through ``raw_cursor``, prepared on the server (planned once per connection);
    returns its rows (none for a statement without results)."""
    with raw_cursor(connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if cursor.description else []


def preparing_cursor(connection):
    """A cursor that prepares its statements on PostgreSQL (Django's query log and error wrapping kept), and
    Django's own cursor elsewhere. For hand-written SQL run often with the same text (each distinct text is
    prepared once per connection: keep the number of distinct texts bounded)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    server_prepare_allow(connection)
    with connection.wrap_database_errors:
        return connection._prepare_cursor(PreparingCursor(connection.connection))


def slot(number: int) -> str:
    """The placeholder of the ``number``-th value (0-based)."""
    return f"\x00cdp-slot-{number}\x00"


class PreparedValues:
    def __init__(self, queryset: QuerySet, slots: int):
        query = queryset.query
        self.using = queryset.db
        compiler = query.get_compiler(using=self.using)
        sql, params = compiler.as_sql()
        placeholders = {slot(number): number for number in range(slots)}
        self.sql = sql
        self.params = list(params)
        self.positions = [(index, placeholders[param]) for index, param in enumerate(self.params)
                          if isinstance(param, str) and param in placeholders]
        if {number for _, number in self.positions} != set(range(slots)):
            raise ValueError("every slot must be a whole parameter of the query")
        self.names = list(query.selected) if query.selected else [
            *query.extra_select, *query.values_select, *query.annotation_select]
        fields = [selected[0] for selected in compiler.select[:compiler.col_count]]
        self.converters = compiler.get_converters(fields)

    def rows(self, *values) -> list[dict]:
        """The rows (as dicts, like values()) with ``values`` in the slots, in slot order."""
        params = list(self.params)
        for index, number in self.positions:
            params[index] = values[number]
        connection = connections[self.using]
        with preparing_cursor(connection) as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if connection.queries_logged and connection.queries_log and connection.queries_log[-1]["sql"] is None:
            # Django's query log cannot render a prepared statement's text: log the SQL it was made from.
            connection.queries_log[-1]["sql"] = self.sql
        result = []
        for row in rows:
            row = list(row)
            for position, (converters, expression) in self.converters.items():
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
            result.append(dict(zip(self.names, row, strict=True)))
        return result
