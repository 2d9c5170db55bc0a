"""The ASGI middleware that bounds each FHIR request's context and writes its AuditEvent.

It wraps ``/fhir`` requests (transactions at the base too; not the public CapabilityStatement
and SMART configuration):

* each request starts with no access and no write context, and leaves the context variables
  as it found them, so nothing a request was allowed leaks into the next one;
* after the response has been sent (or the request failed with an unhandled error,
  audited as a 500) it hands the AuditEvent, as an audit journal entry
  (``service.audit.journal``), to the app's batched ``AuditWriter``
  (``service.audit.writer``): the client does not wait for it, and a failure to prepare
  or write it is logged loudly, never swallowed. The access dependency leaves
  the caller's ``Access`` and the interaction on the request state; patient links are read
  from the response the client received, unless the handler named them from the answer it
  had built (``about_patients``), which spares parsing that answer again.

In the explicit development mode there is no caller to name and nothing is audited.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.audit import journal
from service.audit.events import RequestRecord, patients_of, target_of
from service.audit.writer import AuditWriter
from service.auth.access import Access, current_access
from service.interactions import Interactions
from service.write_hooks import WriteContext, write_context

log = logging.getLogger("keyworker.audit")
PUBLIC_PATHS = ("/fhir/metadata", "/fhir/.well-known/smart-configuration")
NO_ACCESS = Access(client_id=None)
# Responses larger than this are audited without reading their patients from the body.
_MAX_INSPECTED_BYTES = 4 * 1024 * 1024
_ABOUT = "audit_patients"


def about_patients(request: Request, patient_ids: list[str]) -> None:
    """Name the patients (by id) of the answer a handler is about to send: the audit then
    need not parse the response body (a sixteenth of the CPU of a ``$accountable``, whose
    answer is many small objects), nor the handler walk its answer to find them."""
    setattr(request.state, _ABOUT, patient_ids)


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/fhir" or path.startswith("/fhir/")) or path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500
        body: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and size <= _MAX_INSPECTED_BYTES:
                chunk = message.get("body", b"")
                size += len(chunk)
                body.append(chunk)
            await send(message)

        access_token = current_access.set(NO_ACCESS)
        context_token = write_context.set(WriteContext())
        failure: Exception | None = None
        try:
            await self.app(scope, receive, capture)
        except Exception as error:
            # the server's failure, whatever it had begun to send: audited, then answered
            failure, status = error, 500
        finally:
            write_context.reset(context_token)
            current_access.reset(access_token)
        if self.enabled:
            await self._record(
                scope, status, b"".join(body) if size <= _MAX_INSPECTED_BYTES else b""
            )
        if failure is not None:
            raise failure

    async def _record(self, scope: Scope, status: int, body: bytes) -> None:
        state: dict[str, Any] = scope.get("state", {})
        access = state.get("access")
        client = scope.get("client")
        record = RequestRecord(
            method=scope["method"],
            path=scope["path"].removeprefix("/fhir").lstrip("/"),
            query=scope.get("query_string", b"").decode("latin-1"),
            status=status,
            address=client[0] if client else None,
            interaction=state.get("interaction"),
            access=access if isinstance(access, Access) else None,
        )
        service: Interactions = scope["app"].state.interactions
        patients = [record.access.patient] if record.access and record.access.patient else []
        target = target_of(record.path)
        if target is not None and target.startswith("Patient/"):
            patients.append(target.removeprefix("Patient/"))
        if 200 <= status < 300:
            named = state.get(_ABOUT)
            if named is not None:
                patients.extend(named)
            elif body:
                # a body that is not JSON (an empty 204, say) names no patients
                with contextlib.suppress(orjson.JSONDecodeError):
                    patients.extend(patients_of(orjson.loads(body), service.base_url))
        writer: AuditWriter = scope["app"].state.audit
        try:
            await writer.submit(journal.entry(record, service.clock(), patients, service.base_url))
        except Exception:  # the response is sent; the failure must be seen, not lost
            log.exception("could not queue the AuditEvent for %s %s", record.method, scope["path"])
