"""fhir-core's check that no list of complex elements holds a null, with its per-class facts kept.

Since fhir-core 1.1.11 every element of every resource passes through
``FHIRAbstractModel.reject_null_complex_elements``, which asks of each of its class's fields,
from the field's type annotation, whether it is a list of complex types, and only then looks
at the data. The answer depends on the class alone, yet it was worked out anew for each
element: a quarter of the cost of validating a CareTeam or CarePlan (422 -> 309 us and
565 -> 408 us a resource, /tmp micro-benchmark) and a tenth of a worker's CPU during a bulk
load. ``install`` puts a version in its place that lists those fields once per class and
looks only at them; when one of them does hold a null it hands the data to fhir-core's own
check, so the refusal (message, location) is fhir-core's.

It must run before the ``fhir.resources`` classes are built, because pydantic binds each
class's validators when the class is created; ``fhir_mappings.model`` calls it before
importing them. Without the check in the installed fhir-core it does nothing.
"""

from __future__ import annotations

from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import is_list_type, is_primitive_type

_NAME = "reject_null_complex_elements"

_fhir_core_check: Any = None

# Per model class: (field name, alias) of each field that holds a list of complex elements.
_complex_lists: dict[type[Any], tuple[tuple[str, str | None], ...]] = {}


def _lists_of(cls: type[Any]) -> tuple[tuple[str, str | None], ...]:
    found = _complex_lists.get(cls)
    if found is None:
        # The same test as fhir-core's: ``<name>__ext`` lists line primitives up with their
        # extensions, and their nulls are placeholders, not missing elements.
        found = _complex_lists[cls] = tuple(
            (name, field.alias)
            for name, field in cls.model_fields.items()
            if is_list_type(field) and not is_primitive_type(field) and not name.endswith("__ext")
        )
    return found


def _reject_null_complex_elements(cls: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    for name, alias in _lists_of(cls):
        value = data.get(alias if alias and alias in data else name)
        if isinstance(value, list) and any(item is None for item in value):
            return _fhir_core_check(cls, data)  # raises fhir-core's own ValidationError
    return data


def install() -> None:
    """Put the check above in place of fhir-core's (once; not at all without fhir-core's)."""
    global _fhir_core_check
    original = FHIRAbstractModel.__dict__.get(_NAME)
    if not isinstance(original, classmethod) or original.__func__ is _reject_null_complex_elements:
        return
    _fhir_core_check = original.__func__
    setattr(FHIRAbstractModel, _NAME, classmethod(_reject_null_complex_elements))


def installed_for(cls: type[Any]) -> bool:
    """Whether ``cls`` validates with the check above (it was built after ``install``)."""
    validator = cls.__pydantic_decorators__.model_validators.get(_NAME)
    bound = getattr(validator, "func", None)
    return getattr(bound, "__func__", None) is _reject_null_complex_elements
