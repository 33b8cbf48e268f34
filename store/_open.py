"""Open a store by what ``--db`` says: a file path (SQLite) or a ``postgresql://`` URL."""

from __future__ import annotations

from os import PathLike

from chiploc.store._postgres import PostgresStore, is_postgres_url
from chiploc.store._sqlite import SqliteStore, open_store

__all__ = ["open_database"]


def open_database(
    target: str | PathLike[str],
    *,
    read_only: bool = False,
    retry_budget_s: float = 30.0,
) -> SqliteStore | PostgresStore:
    """``postgresql://user@host:port/db`` (or ``postgres://``) opens a :class:`PostgresStore`;
    anything else is a path to an SQLite file (:func:`open_store`, the default backend).

    ``retry_budget_s`` bounds how long a PostgreSQL store keeps retrying a connection
    failure before raising ``StoreUnavailable`` (SQLite ignores it).
    """
    if is_postgres_url(target):
        return PostgresStore.open(str(target), read_only=read_only, retry_budget_s=retry_budget_s)
    return open_store(target, read_only=read_only)
