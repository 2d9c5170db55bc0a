"""Work that goes with every write: checks, resources stored beside it, derived rows.

Features that derive data from writes (the keyworking projection and its rules, Provenance
for care records, the token's reach) subclass ``WriteHook`` and register with
``Interactions`` instead of editing the write path. Each write, or each batch of a
transaction Bundle's creates (a batch holds each resource at most once), goes through them
in three steps:

1. ``check``: what needs no database, before anything is written; raising a ``FhirError``
   refuses the whole write.
2. ``companions`` and ``companion_rows``: resources (a Provenance) and rows of other tables
   (the projection of a new resource) stored by the same statement as the write, so they
   cost no statement of their own; a write is one statement, not one per hook.
3. ``write_batch``: work inside the write's transaction, after the rows are written (the
   keyworking projection); raising refuses the whole write, rolled back. ``needs_database``
   says whether a batch has any: when no hook has, an update is one statement with no
   transaction around it (``Interactions.update``).

Who is writing, and why, comes from ``write_context``: the HTTP layer sets it per request
(client id from the token, reason from ``X-Provenance``); writes outside a request (the demo
loader, the CLI) see the default, which names the server itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.combined_writes import TableRows
from service.storage.repository import NewResource, Stored


@dataclass(frozen=True)
class WriteContext:
    agent: str | None = None  # the OAuth client id, when the write came with a token
    user: str | None = None
    reason: str | None = None  # free text from X-Provenance or an operation's parameter


SERVER_WRITE = WriteContext()  # frozen, so sharing it as the default is safe
write_context: ContextVar[WriteContext] = ContextVar("write_context", default=SERVER_WRITE)


@dataclass(frozen=True)
class Written:
    """One write: the new version, its JSON (None for a deletion) and what it replaces.

    ``derived`` keeps what a hook works out from the write for its later steps: the same
    object goes through ``needs_database``, ``check``, the companions and ``write_batch``.
    """

    stored: Stored
    body: dict[str, Any] | None
    previous: Stored | None
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class WriteHook:
    """A hook does nothing at any step it does not override."""

    def check(self, batch: Sequence[Written]) -> None:
        """Refuse (raise) what can be refused without the database."""

    def companions(self, batch: Sequence[Written]) -> list[NewResource]:
        """First versions of resources to store with the batch, in its statement."""
        return []

    def companion_rows(self, batch: Sequence[Written]) -> list[TableRows]:
        """Rows of other tables to store with the batch, in its statement."""
        return []

    def needs_database(self, batch: Sequence[Written]) -> bool:
        """Whether ``write_batch`` has work for this batch."""
        return False

    async def write_batch(self, connection: AsyncConnection, batch: Sequence[Written]) -> None:
        """Work inside the write's transaction, after its rows are written."""


def checked(
    hooks: Sequence[WriteHook], batch: Sequence[Written]
) -> tuple[list[NewResource], list[TableRows]]:
    """Every hook's check of the batch, then the companions they want stored with it."""
    for hook in hooks:
        hook.check(batch)
    resources = [companion for hook in hooks for companion in hook.companions(batch)]
    return resources, [rows for hook in hooks for rows in hook.companion_rows(batch)]


def need_database(hooks: Sequence[WriteHook], batch: Sequence[Written]) -> bool:
    return any(hook.needs_database(batch) for hook in hooks)


async def run_hooks(
    hooks: Sequence[WriteHook], connection: AsyncConnection, batch: Sequence[Written]
) -> None:
    """Every hook's ``write_batch``, in the order the hooks were registered."""
    for hook in hooks:
        await hook.write_batch(connection, batch)
