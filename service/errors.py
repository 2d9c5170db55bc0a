"""The one error tree of the service, and how an error becomes an OperationOutcome.

::

    FhirError                      (status, issues)
    ├── BadRequest              400  malformed JSON, invalid resource, bad search value
    ├── Unauthorized            401  missing or invalid access token
    ├── Forbidden               403  token lacks the scope
    ├── NotFound                404  unknown type, id or version
    ├── MethodNotAllowed        405
    ├── NotAcceptable           406  a format other than JSON was asked for
    ├── Conflict                409  version conflict, concurrent create
    ├── Gone                    410  the resource was deleted
    ├── PreconditionFailed      412  If-Match mismatch, conditional with several matches
    ├── PayloadTooLarge         413
    ├── UnsupportedMediaType    415
    └── Unprocessable           422  a business rule (reference, keyworking rule) is broken

Routers raise these; one exception handler turns them into responses. Anything else is a bug:
it is logged and the client gets a generic 500 outcome without the exception text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from fhir_mappings.issues import Issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


class FhirError(Exception):
    """An error the client caused (or a refusal), carrying every issue found."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "exception"

    def __init__(
        self,
        message: str | None = None,
        *,
        expression: Sequence[str] = (),
        code: str | None = None,
        issues: Sequence[Issue] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        collected = list(issues)
        if message is not None:
            collected.insert(0, Issue(message, code or self.default_code, "error", expression))
        super().__init__(collected[0].diagnostics if collected else type(self).__name__)
        self.issues: list[Issue] = collected
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class BadRequest(FhirError):
    status = 400
    default_code = "invalid"


class Unauthorized(FhirError):
    status = 401
    default_code = "login"


class Forbidden(FhirError):
    status = 403
    default_code = "forbidden"


class NotFound(FhirError):
    status = 404
    default_code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    default_code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    default_code = "not-supported"


class Conflict(FhirError):
    status = 409
    default_code = "conflict"


class Gone(FhirError):
    status = 410
    default_code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    default_code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    default_code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    default_code = "not-supported"


class Unprocessable(FhirError):
    status = 422
    default_code = "business-rule"
