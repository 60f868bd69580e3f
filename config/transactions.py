"""`on_rollback`: undo a side effect (a written file) when its transaction rolls back.

Django offers on_commit only. The hook rides on it: a sentinel registered with
on_commit is either run (the transaction committed) or dropped by Django, which
discards the callbacks of a rolled-back transaction or savepoint (rollback(),
savepoint_rollback() and close() empty or filter the list). CPython frees the
sentinel as soon as Django drops its last reference, inside the rollback, and
the sentinel then runs the undo. The one other way to be dropped unrun: an
earlier on_commit callback raised while the commit hooks ran, which Django marks
with `run_commit_hooks_on_set_autocommit_on`; the data were committed then, and
nothing is undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)


class _Sentinel:
    def __init__(self, undo: Callable[[], None], using: str) -> None:
        self.undo = undo
        self.connection = connections[using]
        self.done = False

    def committed(self) -> None:
        self.done = True

    def __del__(self) -> None:
        if self.done or self.connection.run_commit_hooks_on_set_autocommit_on:
            return
        self.done = True
        try:
            self.undo()
        except Exception:  # an undo must never break the rollback itself
            logger.exception("undoing a rolled-back side effect failed")


def on_rollback(undo: Callable[[], None], using: str | None = None) -> None:
    """Call `undo` if the current transaction (or savepoint) rolls back.

    Outside a transaction (autocommit) there is nothing to roll back: no-op.
    """
    using = using or DEFAULT_DB_ALIAS
    connection = connections[using]
    if not connection.in_atomic_block:
        return
    sentinel = _Sentinel(undo, using)
    connection.on_commit(sentinel.committed)
    # Only the callback list holds the sentinel from here on.
    del sentinel
