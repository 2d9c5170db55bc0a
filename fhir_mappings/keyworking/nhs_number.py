"""NHS numbers (``https://fhir.nhs.uk/Id/nhs-number``) and their modulus-11 check digit.

https://www.datadictionary.nhs.uk/attributes/nhs_number.html: ten digits; weight the first nine
by 10 down to 2, take 11 minus the sum's remainder mod 11 (11 becomes 0; 10 is never issued),
and that is the tenth digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from fhir_mappings.issues import Issue

_IDENTIFIER_OBJECT = b'"identifier":{'

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


def valid(value: str) -> bool:
    digits = value.replace(" ", "")
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def identifier_issues(
    identifiers: Iterable[tuple[str, Mapping[str, Any]]],
) -> list[Issue]:
    """Issues for each (FHIRPath, Identifier) whose NHS number fails the check."""
    issues = []
    for expression, identifier in identifiers:
        if identifier.get("system") != NHS_NUMBER:
            continue
        value = identifier.get("value")
        if not isinstance(value, str) or not valid(value):
            issues.append(
                Issue(
                    f"Rule nhs-number-check: {value!r} is not a valid NHS number "
                    "(ten digits passing the modulus-11 check)",
                    code="value",
                    expression=(expression,),
                )
            )
    return issues


def patient_issues(body: Mapping[str, Any]) -> list[Issue]:
    return identifier_issues(
        (f"Patient.identifier[{i}]", ident)
        for i, ident in enumerate(body.get("identifier") or ())
        if isinstance(ident, Mapping)
    )


def reference_identifiers(body: Mapping[str, Any], resource_type: str) -> list[Issue]:
    """NHS numbers in identifier references anywhere in a resource (``subject.identifier``).

    Every write comes through here, and most resources name nobody by identifier: their
    compact JSON then has no ``"identifier":{`` (inside string values quotes are escaped, so
    only a key can spell it), and one search of those bytes replaces the walk of every
    element, which cost more than all the other keyworking rules of a write together.
    """
    if _IDENTIFIER_OBJECT not in orjson.dumps(body):
        return []
    found: list[tuple[str, Mapping[str, Any]]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            ident = node.get("identifier")
            # Only Reference.identifier is a single Identifier; resource identifiers are lists.
            if isinstance(ident, Mapping):
                found.append((f"{path}.identifier", ident))
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(body, resource_type)
    return identifier_issues(found)
