"""Work that must happen inside a write's transaction, after the new version is stored.

Features that derive data from writes (the keyworking projection and its rules, Provenance
for care records) register a ``WriteHook`` with ``Interactions`` instead of editing the
write path. A hook that raises a ``FhirError`` refuses the whole write: the transaction rolls
back and nothing of it is kept.

A transaction Bundle writes its plain creates together; a hook that can do its work for many
writes at once (one statement per table instead of one per write) also implements
``BatchWriteHook``, and ``run_hooks`` hands it the whole batch. A batch holds each resource
at most once. A hook without the batch method is called write by write.

Who is writing, and why, comes from ``write_context``: the HTTP layer sets it per request
(client id from the token, reason from ``X-Provenance``); writes outside a request (the demo
loader, the CLI) see the default, which names the server itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from service.storage.repository import Stored


@dataclass(frozen=True)
class WriteContext:
    agent: str | None = None  # the OAuth client id, when the write came with a token
    user: str | None = None
    reason: str | None = None  # free text from X-Provenance or an operation's parameter


SERVER_WRITE = WriteContext()  # frozen, so sharing it as the default is safe
write_context: ContextVar[WriteContext] = ContextVar("write_context", default=SERVER_WRITE)


@dataclass(frozen=True)
class Written:
    """One stored write: the new version, its JSON (None for a deletion) and what it replaced."""

    stored: Stored
    body: dict[str, Any] | None
    previous: Stored | None


class WriteHook(Protocol):
    async def __call__(self, connection: AsyncConnection, written: Written) -> None: ...


class BatchWriteHook(WriteHook, Protocol):
    async def write_batch(self, connection: AsyncConnection, batch: Sequence[Written]) -> None: ...


async def run_hooks(
    hooks: Sequence[WriteHook], connection: AsyncConnection, batch: Sequence[Written]
) -> None:
    """Every hook over the batch, hook by hook, in the order the hooks were registered.

    A batch hook is recognised by its method, not ``isinstance`` against the protocol: a
    runtime protocol check walks the protocol's members on every call, which was 2% of an
    update's CPU.
    """
    for hook in hooks:
        write_batch = getattr(hook, "write_batch", None)
        if write_batch is not None:
            await write_batch(connection, batch)
        else:
            for written in batch:
                await hook(connection, written)
