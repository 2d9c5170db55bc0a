"""FHIR JSON's primitive types taken strictly: no string for a boolean or a number, no number
for a string (https://hl7.org/fhir/R4/json.html#primitive).

fhir-core validates in pydantic's lax mode, which takes ``"true"`` or ``1`` for a boolean,
``"2"`` or ``2.0`` for an integer, ``"1.5"`` for a decimal and ``0`` for a date (as a Unix
time). A client that sends those has a bug the server would hide by storing its JSON as
sent. ``install`` makes every FHIR model strict (fhir-core's global model configuration),
then loosens again only the types whose JSON form is a string pydantic must parse into an
object — date, dateTime, instant, time, uuid and base64Binary — so that they take a JSON
string, and nothing else, as before; and it makes decimal take a JSON number alone.

It must run before the ``fhir.resources`` classes are built, since pydantic builds each
class's validator when the class is created; ``fhir_mappings.model`` calls it before
importing them, and ``installed_for`` tells whether it was in time for a class.
"""

from __future__ import annotations

from typing import Annotated, Any

from fhir_core import constraints
from fhir_core import types as fhir_types
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

# fhir-core's aliases whose JSON form is a string parsed into a Python object.
_PARSED_STRINGS = (
    "DateType",
    "DateTimeType",
    "InstantType",
    "TimeType",
    "UuidType",
    "Base64BinaryType",
)
_PARSED_LEAVES = {"date", "datetime", "time", "uuid", "bytes"}


def _string_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a JSON string")
    return value


def _number_only(value: Any) -> Any:
    if isinstance(value, (str, bool)):
        raise PydanticCustomError("decimal_type", "Input should be a JSON number")
    return value


def _loosen(schema: Any) -> None:
    """Let the parsing schema under ``schema`` (behind fhir-core's and pydantic's wrapping
    validators) take a string again, whatever the models' strictness."""
    while isinstance(schema, dict):
        if schema.get("type") in _PARSED_LEAVES:
            schema["strict"] = False
            return
        schema = schema.get("schema")


class _JsonString:
    """``Annotated`` marker: a JSON string, parsed as the type it is annotated on parses it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        _loosen(schema)
        return core_schema.no_info_before_validator_function(_string_only, schema)


class _JsonNumber:
    """``Annotated`` marker: a JSON number, never a string (nor a boolean)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_number_only, handler(source))


def _retype(name: str, marker: object) -> None:
    original = getattr(fhir_types, name)
    retyped = Annotated[original, marker]  # type: ignore[valid-type]  # built at run time
    constraints.FHIR_PRIMITIVES_MAPS[retyped] = constraints.FHIR_PRIMITIVES_MAPS[original]
    setattr(fhir_types, name, retyped)


def install() -> None:
    """Make the FHIR models strict (once), before their classes are built."""
    if any(isinstance(m, _JsonNumber) for m in getattr(fhir_types.DecimalType, "__metadata__", ())):
        return
    FHIRAbstractModel.set_global_model_config(strict=True)
    for name in _PARSED_STRINGS:
        _retype(name, _JsonString())
    _retype("DecimalType", _JsonNumber())


def installed_for(cls: type[Any]) -> bool:
    """Whether ``cls`` validates strictly (it was built after ``install``)."""
    return cls.model_config.get("strict") is True
