"""The R4 invariants of the served types and their datatypes, checked on every write.

A StructureDefinition's constraints (``ctm-1``, ``per-1``, ``ele-1``...) are FHIRPath
expressions that the structure alone does not enforce, and that ``fhir.resources`` does not
evaluate. A receiving system that validates refuses a resource breaking one, so this service
refuses it first: 422, one issue per broken invariant, each with the code ``invariant``, the
invariant's key and words in ``diagnostics``, and the element in ``expression``.

``INVARIANTS`` is the table: each row is the specification's key, the element or type it is
defined on, its human text and its FHIRPath expression, with that expression compiled by hand
into a Python test of the element's JSON. A FHIRPath engine evaluating the expressions would
cost more than the rest of a write's validation put together; these few expressions are
simple, and the table keeps each one's text beside its Python for review. ``check`` is the one
runner: a walk over the resource's JSON that follows each element's type (from the model
classes, ``fhir_mappings.model.element_types``) and tests the rows that apply there.

Covered: the seven served types (CareTeam, CarePlan, Patient, Practitioner, PractitionerRole,
Organization, RelatedPerson), DomainResource, Element, Extension, Narrative, and every
datatype with an invariant that these types (or an extension on them) can hold. ``txt-1``
and ``txt-2``, defined on Narrative.div, are tested on the Narrative (``fhir_mappings.narrative``
reads its ``div``). ``dom-6`` (a narrative is recommended) is a guideline, not a rule, and is
not enforced.
https://hl7.org/fhir/R4/conformance-rules.html#constraints
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_mappings import model, narrative
from fhir_mappings.issues import Issue, fhirpath
from fhir_mappings.keyworking import moments

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ELEMENT = "Element"  # the context of ele-1: every element
_RESOURCE = "DomainResource"  # the context of dom-*: every resource


@dataclass(frozen=True)
class Invariant:
    key: str
    context: str  # the element path or type it is defined on
    human: str
    expression: str  # R4's FHIRPath, of which ``holds`` is the compiled form
    holds: Callable[[Json, Json], bool]  # (the element, the resource it is in) -> holds
    step: str = ""  # the primitive it is about, when tested from its parent ("div")


def _exists(element: Json, name: str) -> bool:
    """FHIRPath ``name.exists()`` of a primitive: its value, or its extensions (``_name``)."""
    return name in element or f"_{name}" in element


def _value(element: Json) -> bool:
    """``value.exists()`` of a choice element ``value[x]``."""
    return any(key.startswith(("value", "_value")) for key in element)


def _number(element: Json, name: str) -> float | None:
    found = element.get(name)
    return found if type(found) in (int, float) else None


def _ucum_or_none(element: Json) -> bool:
    return not _exists(element, "system") or element.get("system") == UCUM


def _positive_or_none(value: float | None) -> bool:
    return value is None or value > 0


def _quantity_order(low: Any, high: Any) -> bool:
    """``low <= high`` for two Quantities, when FHIRPath can compare them (the same unit)."""
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True
    low_value, high_value = _number(low, "value"), _number(high, "value")
    if low_value is None or high_value is None:
        return True
    same = (low.get("system"), low.get("code")) == (high.get("system"), high.get("code"))
    if not same and low.get("code") is None and high.get("code") is None:
        same = low.get("unit") == high.get("unit")
    return not same or low_value <= high_value


def _period_order(period: Json, root: Json) -> bool:
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return True
    return _moment_order(start, end)


def _moment_order(start: str, end: str) -> bool:
    """``start <= end`` for two FHIR dates or dateTimes, as FHIRPath compares them: at the
    precision they share (``2024`` is not after ``2024-03-01``); two times with offsets are
    compared as instants."""
    if len(start) > 10 and len(end) > 10:
        try:
            return moments.bounds(start)[0] <= moments.bounds(end)[0]
        except (ValueError, TypeError):
            return True  # not comparable as instants: FHIRPath gives no verdict either
    shared = min(len(start), len(end), 10)
    return start[:shared] <= end[:shared]


def _target_type(reference: Any, root: Json) -> str | None:
    """The type a Reference resolves to, or None when FHIRPath's ``resolve()`` would find
    nothing to tell (an identifier alone, a contained id that is missing, a ``urn``)."""
    if not isinstance(reference, dict):
        return None
    literal = reference.get("reference")
    if not isinstance(literal, str):
        return None
    if literal.startswith("#"):
        for contained in root.get("contained") or ():
            if isinstance(contained, dict) and contained.get("id") == literal[1:]:
                kind = contained.get("resourceType")
                return kind if isinstance(kind, str) else None
        return None
    parts = literal.split("/_history/")[0].split("/")
    if len(parts) >= 2 and _TYPE.fullmatch(parts[-2]):
        return parts[-2]
    stated = reference.get("type")
    return stated if isinstance(stated, str) else None


def _ctm_1(participant: Json, root: Json) -> bool:
    if "onBehalfOf" not in participant:
        return True
    member = _target_type(participant.get("member"), root)
    return member is None or member == "Practitioner"


def _contained_ids(root: Json) -> set[str]:
    return {c["id"] for c in root.get("contained") or () if isinstance(c, dict) and "id" in c}


def _ref_1(reference: Json, root: Json) -> bool:
    literal = reference.get("reference")
    if not isinstance(literal, str) or not literal.startswith("#") or literal == "#":
        return True  # "#" alone is a contained resource's reference to its container (dom-3)
    return literal[1:] in _contained_ids(root)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _dom_3(resource: Json, root: Json) -> bool:
    contained = [c for c in resource.get("contained") or () if isinstance(c, dict)]
    if not contained:
        return True
    local = {s for s in _strings(resource) if s.startswith("#")}
    return all(f"#{c.get('id')}" in local or "#" in set(_strings(c)) for c in contained)


def _contained_meta(resource: Json, names: tuple[str, ...]) -> bool:
    for contained in resource.get("contained") or ():
        meta = contained.get("meta") if isinstance(contained, dict) else None
        if isinstance(meta, dict) and any(name in meta for name in names):
            return False
    return True


def _rat_1(ratio: Json, root: Json) -> bool:
    numerator, denominator = "numerator" in ratio, "denominator" in ratio
    return (numerator == denominator) and (numerator or "extension" in ratio)


def _tim_9(repeat: Json, root: Json) -> bool:
    if not _exists(repeat, "offset"):
        return True
    when = repeat.get("when") or ()
    return bool(when) and not any(code in ("C", "CM", "CD", "CV") for code in when)


def _non_negative(name: str) -> Callable[[Json, Json], bool]:
    def holds(repeat: Json, root: Json) -> bool:
        found = _number(repeat, name)
        return found is None or found >= 0

    return holds


def _needs(first: str, second: str) -> Callable[[Json, Json], bool]:
    """``first.empty() or second.exists()``."""

    def holds(element: Json, root: Json) -> bool:
        return not _exists(element, first) or _exists(element, second)

    return holds


def _not_home(element: Json, root: Json) -> bool:
    return element.get("use") != "home"


_TIM = "Timing.repeat"
INVARIANTS: tuple[Invariant, ...] = (
    # Element, Extension, Narrative, DomainResource
    Invariant(
        "ele-1",
        _ELEMENT,
        "All FHIR elements must have a @value or children",
        "hasValue() or (children().count() > id.count())",
        lambda element, root: len(element) > ("id" in element),
    ),
    Invariant(
        "ext-1",
        "Extension",
        "Must have either extensions or value[x], not both",
        "extension.exists() != value.exists()",
        lambda extension, root: ("extension" in extension) != _value(extension),
    ),
    Invariant(
        "txt-1",
        "Narrative",
        "The narrative SHALL contain only the basic html formatting elements and attributes "
        "described in chapters 7-11 (except section 4 of chapter 9) and 12 of the HTML 4.0 "
        "standard, <a> elements (either name or href), images and internally contained style "
        "attributes",
        "htmlChecks()",
        lambda text, root: not isinstance(text.get("div"), str) or narrative.allowed(text["div"]),
        step="div",
    ),
    Invariant(
        "txt-2",
        "Narrative",
        "The narrative SHALL have some non-whitespace content",
        "htmlChecks()",
        lambda text, root: (
            not isinstance(text.get("div"), str) or narrative.says_something(text["div"])
        ),
        step="div",
    ),
    Invariant(
        "dom-2",
        _RESOURCE,
        "If the resource is contained in another resource, it SHALL NOT contain nested Resources",
        "contained.contained.empty()",
        lambda resource, root: (
            not any(
                isinstance(c, dict) and "contained" in c for c in resource.get("contained") or ()
            )
        ),
    ),
    Invariant(
        "dom-3",
        _RESOURCE,
        "If the resource is contained in another resource, it SHALL be referred to from "
        "elsewhere in the resource or SHALL refer to the containing resource",
        "contained.where((('#'+id in (%resource.descendants().reference | "
        "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
        "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() "
        "or descendants().where(as(canonical) = '#').exists() or "
        "descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
        _dom_3,
    ),
    Invariant(
        "dom-4",
        _RESOURCE,
        "If a resource is contained in another resource, it SHALL NOT have a meta.versionId "
        "or a meta.lastUpdated",
        "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
        lambda resource, root: _contained_meta(resource, ("versionId", "lastUpdated")),
    ),
    Invariant(
        "dom-5",
        _RESOURCE,
        "If a resource is contained in another resource, it SHALL NOT have a security label",
        "contained.meta.security.empty()",
        lambda resource, root: _contained_meta(resource, ("security",)),
    ),
    # The served types
    Invariant(
        "ctm-1",
        "CareTeam.participant",
        "CareTeam.participant.onBehalfOf can only be populated when "
        "CareTeam.participant.member is a Practitioner",
        "onBehalfOf.exists() implies (member.resolve().iif(empty(), true, "
        "ofType(Practitioner).exists()))",
        _ctm_1,
    ),
    Invariant(
        "cpl-3",
        "CarePlan.activity",
        "Provide a reference or detail, not both",
        "detail.empty() or reference.empty()",
        lambda activity, root: "detail" not in activity or "reference" not in activity,
    ),
    Invariant(
        "pat-1",
        "Patient.contact",
        "SHALL at least contain a contact's details or a reference to an organization",
        "name.exists() or telecom.exists() or address.exists() or organization.exists()",
        lambda contact, root: any(
            name in contact for name in ("name", "telecom", "address", "organization")
        ),
    ),
    Invariant(
        "org-1",
        "Organization",
        "The organization SHALL at least have a name or an identifier, and possibly more than one",
        "(identifier.count() + name.count()) > 0",
        lambda organization, root: "identifier" in organization or _exists(organization, "name"),
    ),
    Invariant(
        "org-2",
        "Organization.address",
        "An address of an organization can never be of use 'home'",
        "where(use = 'home').empty()",
        _not_home,
    ),
    Invariant(
        "org-3",
        "Organization.telecom",
        "The telecom of an organization can never be of use 'home'",
        "where(use = 'home').empty()",
        _not_home,
    ),
    # Datatypes
    Invariant(
        "ref-1",
        "Reference",
        "SHALL have a contained resource if a local reference is provided",
        "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
        "%rootResource.contained.id.trace('ids'))",
        _ref_1,
    ),
    Invariant(
        "per-1",
        "Period",
        "If present, start SHALL have a lower value than end",
        "start.hasValue().not() or end.hasValue().not() or (start <= end)",
        _period_order,
    ),
    Invariant(
        "att-1",
        "Attachment",
        "If the Attachment has data, it SHALL have a contentType",
        "data.empty() or contentType.exists()",
        _needs("data", "contentType"),
    ),
    Invariant(
        "cpt-2",
        "ContactPoint",
        "A system is required if a value is provided.",
        "value.empty() or system.exists()",
        _needs("value", "system"),
    ),
    Invariant(
        "qty-3",
        "Quantity",
        "If a code for the unit is present, the system SHALL also be present",
        "code.empty() or system.exists()",
        _needs("code", "system"),
    ),
    *(
        Invariant(
            "sqty-1",
            where,
            "The comparator is not used on a SimpleQuantity",
            "comparator.empty()",
            lambda quantity, root: not _exists(quantity, "comparator"),
        )
        for where in (
            "CarePlan.activity.detail.dailyAmount",
            "CarePlan.activity.detail.quantity",
            "Range.low",
            "Range.high",
            "SampledData.origin",
        )
    ),
    Invariant(
        "rng-2",
        "Range",
        "If present, low SHALL have a lower value than high",
        "low.empty() or high.empty() or (low <= high)",
        lambda range_, root: _quantity_order(range_.get("low"), range_.get("high")),
    ),
    Invariant(
        "rat-1",
        "Ratio",
        "Numerator and denominator SHALL both be present, or both are absent. If both are "
        "absent, there SHALL be some extension present",
        "(numerator.empty() xor denominator.exists()) and (numerator.exists() or "
        "extension.exists())",
        _rat_1,
    ),
    Invariant(
        "drt-1",
        "Duration",
        "There SHALL be a code if there is a value and it SHALL be an expression of time.  "
        "If system is present, it SHALL be UCUM.",
        "code.exists() implies ((system = %ucum) and value.exists())",
        lambda duration, root: (
            not _exists(duration, "code")
            or (duration.get("system") == UCUM and _exists(duration, "value"))
        ),
    ),
    Invariant(
        "age-1",
        "Age",
        "There SHALL be a code if there is a value and it SHALL be an expression of time.  "
        "If system is present, it SHALL be UCUM.  If value is present, it SHALL be positive.",
        "(code.exists() or value.empty()) and (system.empty() or system = %ucum) and "
        "(value.empty() or value.hasValue().not() or value > 0)",
        lambda age, root: (
            (_exists(age, "code") or not _exists(age, "value"))
            and _ucum_or_none(age)
            and _positive_or_none(_number(age, "value"))
        ),
    ),
    Invariant(
        "cnt-3",
        "Count",
        'There SHALL be a code with a value of "1" if there is a value. If system is '
        "present, it SHALL be UCUM.  If present, the value SHALL be a whole number.",
        "(code.exists() or value.empty()) and (system.empty() or system = %ucum) and "
        "(code.empty() or code = '1') and (value.empty() or value.hasValue().not() or "
        "value.toString().contains('.').not())",
        lambda count, root: (
            (_exists(count, "code") or not _exists(count, "value"))
            and _ucum_or_none(count)
            and count.get("code", "1") == "1"
            and type(count.get("value")) is not float
        ),
    ),
    Invariant(
        "dis-1",
        "Distance",
        "There SHALL be a code if there is a value and it SHALL be an expression of length.  "
        "If system is present, it SHALL be UCUM.",
        "(code.exists() or value.empty()) and (system.empty() or system = %ucum)",
        lambda distance, root: (
            (_exists(distance, "code") or not _exists(distance, "value"))
            and _ucum_or_none(distance)
        ),
    ),
    Invariant(
        "tim-1",
        _TIM,
        "if there's a duration, there needs to be duration units",
        "duration.empty() or durationUnit.exists()",
        _needs("duration", "durationUnit"),
    ),
    Invariant(
        "tim-2",
        _TIM,
        "if there's a period, there needs to be period units",
        "period.empty() or periodUnit.exists()",
        _needs("period", "periodUnit"),
    ),
    Invariant(
        "tim-4",
        _TIM,
        "duration SHALL be a non-negative value",
        "duration.exists() implies duration >= 0",
        _non_negative("duration"),
    ),
    Invariant(
        "tim-5",
        _TIM,
        "period SHALL be a non-negative value",
        "period.exists() implies period >= 0",
        _non_negative("period"),
    ),
    Invariant(
        "tim-6",
        _TIM,
        "If there's a periodMax, there must be a period",
        "periodMax.empty() or period.exists()",
        _needs("periodMax", "period"),
    ),
    Invariant(
        "tim-7",
        _TIM,
        "If there's a durationMax, there must be a duration",
        "durationMax.empty() or duration.exists()",
        _needs("durationMax", "duration"),
    ),
    Invariant(
        "tim-8",
        _TIM,
        "If there's a countMax, there must be a count",
        "countMax.empty() or count.exists()",
        _needs("countMax", "count"),
    ),
    Invariant(
        "tim-9",
        _TIM,
        "If there's an offset, there must be a when (and not C, CM, CD, CV)",
        "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))",
        _tim_9,
    ),
    Invariant(
        "tim-10",
        _TIM,
        "If there's a timeOfDay, there cannot be a when, or vice versa",
        "timeOfDay.empty() or when.empty()",
        lambda repeat, root: "timeOfDay" not in repeat or "when" not in repeat,
    ),
)


def check(resource_type: str, resource: Json) -> list[Issue]:
    """Every invariant ``resource`` breaks, each where it breaks; none: it keeps them all."""
    issues: list[Issue] = []
    _visit(resource, _resource_place(resource_type), None, resource, issues)
    return issues


# Where the walk is: (where the parent is, the element's name, its index or None), from the
# resource down; spelt out as FHIRPath only for an element that breaks an invariant.
_Location = tuple["_Location | None", str, int | None] | None


class _Place:
    """What the walk knows of an element by its type and path, made once for each: the
    invariants it is tested against, and (worked out when first needed) its children's places.
    """

    __slots__ = ("_children", "invariants", "path", "type")

    def __init__(self, type_: str, path: str, where: str, kind: str) -> None:
        self.type = type_  # its class name in the model
        self.path = path  # from the nearest type that stands alone ("CareTeam.participant")
        # kind: "resource", "element", or "valued" (a primitive's extensions beside its value)
        contexts = {path, where, type_, _RESOURCE if kind == "resource" else _ELEMENT}
        if kind == "valued":
            contexts.discard(_ELEMENT)  # hasValue(): its value is beside it, as "name"
        self.invariants = tuple(i for i in INVARIANTS if i.context in contexts)
        self._children: dict[str, tuple[_Place, _Place]] | None = None

    def children(self) -> dict[str, tuple[_Place, _Place]]:
        """Per JSON name of a complex element: its place, without and with a value beside it
        (``where`` is its path from this type: ``Organization.address`` for an Address)."""
        if self._children is None:
            self._children = {}
            for name, (child, stands_alone) in model.element_types(self.type).items():
                where = f"{self.path}.{name}"
                own = child if stands_alone else where
                self._children[name] = (
                    _Place(child, own, where, "element"),
                    _Place(child, own, where, "valued"),
                )
        return self._children


@cache
def _resource_place(resource_type: str) -> _Place:
    return _Place(resource_type, resource_type, resource_type, "resource")


def _visit(
    element: Json, place: _Place, location: _Location, root: Json, issues: list[Issue]
) -> None:
    for invariant in place.invariants:
        if not invariant.holds(element, root):
            issues.append(_issue(invariant, root, location))
    children = place.children()
    for name, value in element.items():
        found = children.get(name)
        if found is None:
            continue
        plain, valued = found
        beside = element.get(name[1:]) if name[0] == "_" else None
        if type(value) is not list:
            if type(value) is dict:
                _visit_child(
                    value, plain, valued, beside is not None, (location, name, None), root, issues
                )
            continue
        for index, item in enumerate(value):
            if type(item) is dict:
                has_value = (
                    beside is not None
                    and type(beside) is list
                    and index < len(beside)
                    and beside[index] is not None
                )
                _visit_child(item, plain, valued, has_value, (location, name, index), root, issues)


def _visit_child(
    item: Json,
    plain: _Place,
    valued: _Place,
    has_value: bool,
    location: _Location,
    root: Json,
    issues: list[Issue],
) -> None:
    if plain.type != "Resource":
        _visit(item, valued if has_value else plain, location, root, issues)
        return
    kind = item.get("resourceType")  # a contained resource: of its own type
    if isinstance(kind, str) and _TYPE.fullmatch(kind):
        _visit(item, _resource_place(kind), location, root, issues)


def _issue(invariant: Invariant, root: Json, location: _Location) -> Issue:
    steps: list[str | int] = [invariant.step] if invariant.step else []
    while location is not None:
        location, name, index = location
        steps[:0] = [name] if index is None else [name, index]
    return Issue(
        f"{invariant.key}: {invariant.human} (R4 invariant of {invariant.context}: "
        f"{invariant.expression})",
        code="invariant",
        expression=(fhirpath(str(root["resourceType"]), steps),),
    )
