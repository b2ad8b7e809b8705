"""A select on the hot path, compiled once per dialect and run straight through the database driver.

SQLAlchemy's execution of a cached statement (cache key from the statement's tree, execution
context, result metadata) costs two to four times the database's own work for the one-row
reads of a relay. `first_row` keeps what SQLAlchemy contributes that matters (the SQL for the
dialect, the column types' conversion of values both ways: times, booleans) and skips the rest:
the statement is compiled once, and each call binds, executes on the session's own connection
(in its transaction) and converts the one row it reads.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import Select
from sqlmodel import Session

from concierge.driver_sql import driver_cursor


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...]  # the parameters in the order the SQL takes them (positional drivers)
    positional: bool
    fixed: dict[str, Any]  # values compiled in (a literal IN's members), converted already
    bind: dict[str, Callable[[Any], Any]]  # conversions of the caller's values, by name
    row: Any  # the row class (a named tuple of the selected columns)
    results: tuple[Callable[[Any], Any] | None, ...]


_COMPILED: dict[tuple[int, str], _Compiled] = {}


def _compile(statement: Select[Any], session: Session, params: dict[str, Any]) -> _Compiled:
    dialect = session.get_bind().dialect
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is not None:
        return found
    # The literal IN lists are expanded into the SQL once; the caller's parameters stay placeholders.
    compiled = statement.compile(dialect=dialect)
    expanded = compiled.construct_expanded_state(dict.fromkeys(params))
    positional = expanded.positiontup is not None
    names = tuple(expanded.positiontup or ())
    bind: dict[str, Callable[[Any], Any]] = {}
    for name in params:
        process = compiled.binds[name].type._cached_bind_processor(dialect)
        if process is not None:
            bind[name] = process
    fixed = {name: value.value if isinstance(value, Enum) else value  # as the driver takes them
             for name, value in expanded.parameters.items() if name not in params}
    columns = list(statement.selected_columns)
    row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
    results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    found = _COMPILED[key] = _Compiled(expanded.statement, names, positional, fixed, bind, row, results)
    return found


def first_row(session: Session, statement: Select[Any], params: dict[str, Any]) -> Any:  # noqa: ANN401
    """The first row of `statement` with `params` (None when there is none), its columns by name."""
    compiled = _compile(statement, session, params)
    values = {**compiled.fixed, **params}
    for name, process in compiled.bind.items():
        values[name] = process(values[name])
    with driver_cursor(session) as cursor:
        cursor.execute(compiled.sql, tuple(values[name] for name in compiled.names) if compiled.positional
                       else values)
        raw = cursor.fetchone()
    if raw is None:
        return None
    return compiled.row(*(value if process is None else process(value)
                          for value, process in zip(raw, compiled.results, strict=True)))
