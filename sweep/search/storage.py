"""The sweep's Optuna storage, opened once per process for every arm's study.

On SQLite (the embedded profile) each Optuna write is its own transaction, and a suggestion makes
about seven (the trial, its parameters, the constant liar's note, the searcher's attributes):
with SQLite's defaults every commit waits for the disk (a rollback journal and a full sync), about
10-15 ms each here, so a suggestion cost 75-85 ms whatever the study's size. The connections
switch the file to write-ahead logging with `synchronous=NORMAL`, SQLite's documented pairing
for it: a commit is an append to the log, synced at checkpoints; a committed trial survives a
crash of the driver, and only a power loss or an OS crash may roll back the last ones, which
`sweep resume` already handles (sweep/search/searcher.py: orphans). On PostgreSQL the same
trade is the session's `synchronous_commit = off` (only a crash of the database server may lose
the last commits, never corrupt them). See docs/platform.md.
"""

from __future__ import annotations

import optuna
import sqlalchemy


def _sqlite_log_ahead(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _postgres_async_commit(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    dbapi_connection.commit()


def open_storage(url: str, kind: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """An RDBStorage (or subclass `kind`) for `url` whose commits do not wait for the disk."""
    storage = kind(url)
    listener = {"sqlite": _sqlite_log_ahead, "postgresql": _postgres_async_commit}.get(storage.engine.name)
    if listener is not None and ":memory:" not in url:
        storage.engine.dispose()  # the connection that created the schema predates the listener
        sqlalchemy.event.listen(storage.engine, "connect", listener)
    return storage
