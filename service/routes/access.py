"""Who may call the FHIR endpoints, and what each interaction needs.

Secure by default: without a validated bearer token nothing under ``/fhir`` (but the
CapabilityStatement and the SMART configuration) is served. The dependency validates the
token (``service.auth.tokens``), turns its scopes into an ``Access``, leaves it on
``request.state.access`` and in ``current_access`` (for the write guard), names the caller
in ``write_context`` (for Provenance), and checks the route's interaction:

* read, vread, history-instance (and instance-level operations, ``check_record``) need
  read rights (else 403), and a restricted token (``patient/`` scope, v2 query
  restriction) may only read records inside its restriction: another one is answered 404,
  as one that does not exist, so the answer never tells whether it exists;
* search and history need search rights; type history cannot apply restrictions, so a
  restricted token is refused it (search instead), and system history needs
  unrestricted search rights on every type;
* create, update, patch, delete need the matching write rights; the write guard then
  checks, inside the transaction, the version replaced and the version stored.

A request without credentials is challenged with ``Bearer realm="keyworker"`` alone; a
token that was sent and refused adds ``error="invalid_token"`` (RFC 6750 section 3.1).

Routes the registry does not generate (operations) call ``require`` with what they need.
The operator's explicit ``--insecure-no-auth`` development mode switches checking off and is
announced in the log at start and in a header on every response.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from fastapi import Depends
from starlette.requests import Request

from service.auth.access import FULL_ACCESS, Access, current_access
from service.auth.records import record_matches, unknown
from service.auth.tokens import InvalidToken
from service.errors import Forbidden, Unauthorized
from service.interactions import Interactions
from service.settings import Settings
from service.write_hooks import WriteContext, write_context

INSECURE_HEADER = "X-Keyworker-Insecure"
PROVENANCE_HEADER = "X-Provenance"

# FHIR interaction (as the registry names routes) -> the SMART action it needs.
ACTION_OF = {
    "read": "read",
    "vread": "read",
    "history-instance": "read",
    "search-type": "search",
    "search-post": "search",
    "history-type": "search",
    "create": "create",
    "update": "update",
    "conditional-update": "update",
    "patch": "update",
    "delete": "delete",
    "conditional-delete": "delete",
}
_INSTANCE_READS = ("read", "vread", "history-instance")


def _challenge(description: str, *, sent: bool = True) -> Unauthorized:
    """401 with its challenge: an error code only when a token was sent (RFC 6750 3.1)."""
    quoted = description.replace("\\", "").replace('"', "'")
    challenge = 'Bearer realm="keyworker"'
    if sent:
        challenge += f', error="invalid_token", error_description="{quoted}"'
    return Unauthorized(description, headers={"WWW-Authenticate": challenge})


def access_of(claims: dict[str, Any]) -> Access:
    """An ``Access`` from verified claims (``scope``, or Azure AD's ``scp``/``roles``)."""
    scopes = claims.get("scope") or claims.get("scp") or claims.get("roles") or ""
    if isinstance(scopes, list):
        scopes = " ".join(str(s) for s in scopes)
    client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
    user = claims.get("fhirUser")
    patient = claims.get("patient")
    return _access(
        str(scopes),
        str(client_id) if client_id else None,
        str(user) if user else None,
        str(patient) if patient else None,
    )


@lru_cache(maxsize=1024)
def _access(scopes: str, client_id: str | None, user: str | None, patient: str | None) -> Access:
    """Parsing scopes on every request of the same token was a tenth of a read's time;
    an ``Access`` is immutable, so callers with the same grant share one."""
    return Access.from_scopes(scopes, client_id=client_id, user=user, patient=patient)


def route_interaction(request: Request) -> tuple[str | None, str | None]:
    """(resource type, interaction) of a route the registry generated (else Nones).

    Generated routes carry ``operation_id = f"{interaction}_{Type}"`` (dashes as
    underscores); system history is ``history_system``.
    """
    route = request.scope.get("route")
    operation = getattr(route, "operation_id", None) or ""
    if operation == "history_system":
        return None, "history-system"
    interaction, _, resource_type = operation.rpartition("_")
    interaction = interaction.replace("_", "-")
    if interaction not in ACTION_OF or not resource_type[:1].isupper():
        return None, None
    return resource_type, interaction


def require(request: Request, resource_type: str, action: str) -> Access:
    """Refuse (403) unless the caller may ``action`` on ``resource_type``; the Access."""
    access: Access = getattr(request.state, "access", None) or current_access.get()
    if not access.allows(resource_type, action):
        raise Forbidden(f"The access token does not allow {action} on {resource_type}")
    return access


async def check_record(
    request: Request, access: Access, resource_type: str, resource_id: str
) -> None:
    """A restricted token may read one record only when it lies inside its restriction;
    another is 404 in the words of one that does not exist."""
    alternatives = access.alternatives(resource_type, "read")
    if () in alternatives:
        return
    service: Interactions = request.app.state.interactions
    stored = await service.read_any(resource_type, resource_id)
    if stored.deleted:
        # The handler answers 410, which carries no data; but a 410 for a record out of
        # reach where a missing one is 404 would tell that it existed: judge it by the
        # version it deleted (a deletion always follows a version with content).
        stored = await service.vread(resource_type, resource_id, str(stored.version - 1))
    body = orjson.loads(stored.content)
    confining = access.compartment(resource_type)
    if not record_matches(
        resource_type, resource_id, body, alternatives, service.base_url, confining
    ):
        raise unknown(stored.reference)


async def authorise(
    request: Request,
    access: Access,
    resource_type: str | None,
    interaction: str | None,
    resource_id: str | None = None,
) -> None:
    """Refuse (403) an interaction the caller's access does not cover."""
    request.state.interaction = interaction
    if interaction == "history-system":
        if not access.covers_all("search"):
            raise Forbidden("System history needs unrestricted read rights on every type")
        return
    if resource_type is None or interaction is None:
        return  # an operation (calls ``require``) or the fallback (answers 404/405)
    require(request, resource_type, ACTION_OF[interaction])
    if interaction == "history-type" and () not in access.alternatives(resource_type, "search"):
        raise Forbidden("Type history cannot apply this token's restrictions; use search")
    if interaction in _INSTANCE_READS and resource_id is not None:
        await check_record(request, access, resource_type, resource_id)


async def authenticate(request: Request, settings: Settings) -> Access | None:
    """The caller's ``Access`` from its bearer token, left where writes and the audit look.

    None in the development mode, which grants full access and names nobody.
    """
    reason = request.headers.get(PROVENANCE_HEADER)
    if settings.insecure_no_auth:
        request.state.access = FULL_ACCESS
        current_access.set(FULL_ACCESS)
        write_context.set(WriteContext(reason=reason))
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _challenge("A bearer access token is required", sent=False)
    try:
        claims = await request.app.state.auth.validator.validate(token.strip())
    except InvalidToken as error:
        raise _challenge(str(error)) from error
    access = access_of(claims)
    request.state.access = access
    current_access.set(access)
    write_context.set(WriteContext(agent=access.client_id, user=access.user, reason=reason))
    return access


def access_dependency(settings: Settings) -> Any:
    async def require_token(request: Request) -> None:
        access = await authenticate(request, settings)
        if access is not None:
            resource_type, interaction = route_interaction(request)
            resource_id = request.path_params.get("id")
            await authorise(request, access, resource_type, interaction, resource_id)

    return Depends(require_token)
