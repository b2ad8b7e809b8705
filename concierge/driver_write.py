"""An insert or update on the hot path, compiled once per dialect and run straight through the driver.

The writes' counterpart of `concierge.driver_select`. SQLAlchemy's execution of a cached insert
(cache key from the statement's tree, execution context, parameter processing, result) cost two to
three times SQLite's own work for the relay's one-row writes. `write` keeps what SQLAlchemy
contributes that matters: the SQL for the dialect, compiled for the parameter names given, and the
column types' conversion of the values (JSON, times, enums). It skips the rest. The statement is
compiled once per dialect and set of parameter names. Each call converts, executes on the
session's own connection (in its transaction) and returns the first value of the row a RETURNING
gives, if any.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import Insert, Update
from sqlmodel import Session

from concierge.driver_sql import driver_cursor


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...]  # the parameters in the order the SQL takes them (positional drivers)
    positional: bool
    defaults: dict[str, Any]  # the plain column defaults of the columns not given
    bind: tuple[tuple[str, Callable[[Any], Any]], ...]  # conversions of the caller's values, by name
    returns: bool


_COMPILED: dict[tuple[int, str, frozenset[str]], _Compiled] = {}


def _compile(statement: Insert | Update, session: Session, params: dict[str, Any]) -> _Compiled:
    dialect = session.get_bind().dialect
    key = (id(statement), dialect.name, frozenset(params))
    found = _COMPILED.get(key)
    if found is not None:
        return found
    compiled = statement.compile(dialect=dialect, column_keys=list(params))
    defaults = {}
    for name in set(compiled.binds) - set(params):  # a column's default SQLAlchemy would fill in, if a plain value
        column = statement.table.c.get(name)
        default = column.default if column is not None else None
        if default is None or not default.is_scalar:
            raise ValueError(f"write: no value for {name!r}")
        defaults[name] = default.arg
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup or ())
    bind = tuple((name, process) for name in [*params, *defaults]
                 if (process := compiled.binds[name].type._cached_bind_processor(dialect)) is not None)
    found = _COMPILED[key] = _Compiled(compiled.string, names, positional, defaults, bind,
                                       bool(compiled.effective_returning))
    return found


def write(session: Session, statement: Insert | Update, params: dict[str, Any]) -> Any:  # noqa: ANN401
    """Run `statement` with `params` in the session's transaction; the first value a RETURNING gives
    (None when it gives no row, e.g. an insert that did nothing on conflict; or without RETURNING)."""
    compiled = _compile(statement, session, params)
    with driver_cursor(session) as cursor:
        cursor.execute(compiled.sql, _converted(compiled, params))
        row = cursor.fetchone() if compiled.returns else None
    return None if row is None else row[0]


def write_many(session: Session, statement: Insert | Update, rows: list[dict[str, Any]]) -> None:
    """`write` for each of `rows` (the same parameter names in each), in one `executemany` of the driver:
    on PostgreSQL one round trip for them all. No RETURNING."""
    if not rows:
        return
    compiled = _compile(statement, session, rows[0])
    if compiled.returns:
        raise ValueError("write_many: a statement with RETURNING gives one row per execution")
    names = rows[0].keys()
    if any(row.keys() != names for row in rows):
        raise ValueError("write_many: every row must have the same parameter names")
    with driver_cursor(session) as cursor:
        cursor.executemany(compiled.sql, [_converted(compiled, row) for row in rows])


def _converted(compiled: _Compiled, params: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
    """The parameters as the driver takes them: defaults added, enums as values, the column types' conversion."""
    values = {**compiled.defaults,
              **{name: value.value if isinstance(value, Enum) else value for name, value in params.items()}}
    for name, process in compiled.bind:
        values[name] = process(values[name])
    return tuple(values[name] for name in compiled.names) if compiled.positional else values
