"""Typed access to SQLAlchemy Core from sqlmodel classes, where sqlmodel's own typing falls short.

sqlmodel builds each table class's `__table__` in its metaclass without declaring it to type checkers,
and `Session.execute` is typed as returning a plain `Result`, which has no `rowcount`. These
helpers say what the objects are, once, instead of an ignore at every use.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Result, Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a sqlmodel table class (for inserts and updates without the ORM)."""
    table = getattr(model, "__table__", None)  # set by sqlmodel's metaclass (table=True), undeclared
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a sqlmodel table class")
    return table


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (its result is a CursorResult at run time)."""
    return cast(CursorResult[Any], result).rowcount


class _Stored(Protocol):  # a record, or a read-only row of its table
    @property
    def id(self) -> int | None: ...


def saved_id(record: _Stored) -> int:
    """The primary key of a stored record: sqlmodel types it `int | None`, None only until the first flush."""
    if record.id is None:
        raise ValueError(f"{type(record).__name__} has no id yet: it was never flushed")
    return record.id
