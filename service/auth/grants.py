"""Which scopes a client gets: the intersection of what it asks for and what it is registered for.

RFC 6749 section 3.3 lets the authorization server grant less than was asked, and SMART
clients rely on that: a client registered for ``system/*.cruds`` asks for
``system/CareTeam.rs`` (least privilege) and gets exactly that; one that asks for more than
it holds gets the part it holds; a scope nothing registered covers is dropped. Only a request
of which nothing at all can be granted is refused (``invalid_scope``).

Resource scopes are compared by meaning, not by spelling: a wildcard type covers every type,
v1 ``.read``/``.write``/``.*`` are the v2 action sets ``rs``/``cud``/``cruds``, and a v2 query
restriction on either side restricts the grant. A granted scope keeps the spelling it was
asked in whenever its meaning is what was asked; a narrowed one is written in v2 letters.
Other scopes (``openid``, ``launch``, ...) are granted only when registered as sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.scopes import Criteria, Scope, parse_scope

_LETTERS = {"create": "c", "read": "r", "update": "u", "delete": "d", "search": "s"}


@dataclass(frozen=True)
class _Spelled:
    """A resource scope with the text it was written in: permission and query as sent."""

    scope: Scope
    permission: str
    query: str

    @classmethod
    def of(cls, text: str) -> _Spelled | None:
        scope = parse_scope(text)
        if scope is None:
            return None
        base, _, query = text.partition("?")
        return cls(scope, base.rpartition(".")[2], query)


def _permission(actions: frozenset[str], asked: _Spelled) -> str:
    """The actions as the request spelled them when they are what it asked, else v2 letters."""
    if frozenset(asked.scope.actions) == actions:
        return asked.permission
    return "".join(letter for action, letter in _LETTERS.items() if action in actions)


def _query(criteria: Criteria, asked: _Spelled, held: _Spelled) -> str:
    """The restriction ``criteria`` (the union of both sides') in the text it came in."""
    for spelled in (asked, held):
        if set(spelled.scope.criteria) == set(criteria):
            return spelled.query
    return f"{asked.query}&{held.query}"


def _within(asked: _Spelled, held: _Spelled) -> tuple[str, frozenset[str], Criteria] | None:
    """(type, actions, criteria) that ``asked`` and ``held`` both allow, or None."""
    want, have = asked.scope, held.scope
    if want.context != have.context:
        return None
    if have.resource_type == "*":
        resource_type = want.resource_type
    elif want.resource_type in ("*", have.resource_type):
        resource_type = have.resource_type
    else:
        return None
    actions = frozenset(want.actions) & frozenset(have.actions)
    if not actions:
        return None
    criteria = tuple(sorted(set(want.criteria) | set(have.criteria)))
    return resource_type, actions, criteria


def _granted_for(asked: _Spelled, held: list[_Spelled]) -> list[str]:
    """The grants one requested resource scope receives, merged per type and restriction."""
    merged: dict[tuple[str, Criteria], tuple[frozenset[str], str]] = {}
    for spelled in held:
        overlap = _within(asked, spelled)
        if overlap is None:
            continue
        resource_type, actions, criteria = overlap
        before, query = merged.get((resource_type, criteria), (frozenset(), ""))
        merged[(resource_type, criteria)] = (
            before | actions,
            query or _query(criteria, asked, spelled),
        )
    texts = []
    for (resource_type, _), (actions, query) in merged.items():
        permission = _permission(actions, asked)
        text = f"{asked.scope.context}/{resource_type}.{permission}"
        texts.append(f"{text}?{query}" if query else text)
    return texts


def granted(requested: str, registered: str) -> list[str]:
    """The scopes to grant for ``requested`` (space-separated), in the order asked."""
    held = [spelled for text in registered.split() if (spelled := _Spelled.of(text))]
    grants: dict[str, None] = {}
    for text in requested.split():
        asked = _Spelled.of(text)
        if asked is None:
            if text in registered.split():
                grants[text] = None
            continue
        grants.update(dict.fromkeys(_granted_for(asked, held)))
    return list(grants)
