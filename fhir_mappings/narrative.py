"""What R4 lets a narrative's XHTML hold: invariants ``txt-1`` and ``txt-2`` of Narrative.div.

https://hl7.org/fhir/R4/narrative.html#xhtml: the ``div`` is well-formed XHTML, a ``div`` in
the XHTML namespace, holding only HTML 4.0's basic formatting elements and attributes, links
(``a`` with ``href`` or ``name``), images and inline styles: no script, form, frame, object,
head, body, event attribute (``onclick``...) nor ``javascript:`` link. And it says something
(``txt-2``): some text that is not whitespace, or an image. A narrative is shown to people by
receiving systems, so this is also what keeps stored markup from running in their browsers.

HTML's named character references (``&nbsp;``) are read as the characters they name, as HTML
readers of narratives do; a DOCTYPE or an entity declaration is refused outright.
"""

from __future__ import annotations

import html.entities
import re
from functools import lru_cache
from typing import NamedTuple
from xml.etree import ElementTree

XHTML = "{http://www.w3.org/1999/xhtml}"
_XML = "{http://www.w3.org/XML/1998/namespace}"

# fmt: off
ELEMENTS = frozenset((
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong",
    "small", "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr",
    "address", "bdo", "kbd", "sub", "sup", "ul", "ol", "li", "dl", "dt", "dd", "pre", "table",
    "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody", "th", "td", "code", "samp",
    "img", "map", "area", "u", "s", "strike", "ins", "del",
))
_COMMON_ATTRIBUTES = frozenset((
    "title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex", "span", "width",
    "height", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope",
    "rowspan", "colspan", "border", "cellpadding", "cellspacing", "frame", "rules", "summary",
    "start", "type", "value", "nowrap", "bgcolor", "cite", "datetime",
))
# fmt: on
_ELEMENT_ATTRIBUTES = {
    "a": frozenset({"href", "name", "rel", "target", "hreflang"}),
    "img": frozenset({"src", "alt", "longdesc", "usemap"}),
    "area": frozenset({"shape", "coords", "href", "alt", "nohref"}),
    "map": frozenset({"name"}),
}
_LINKS = ("href", "src", "longdesc", "cite", "usemap")
_XML_ENTITIES = {"lt", "gt", "amp", "quot", "apos"}
_NAMED = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


class Verdict(NamedTuple):
    allowed: bool  # txt-1
    says_something: bool  # txt-2


def allowed(div: str) -> bool:
    """``txt-1``: well-formed XHTML of the elements and attributes R4 allows."""
    return _read(div).allowed


def says_something(div: str) -> bool:
    """``txt-2``: some text that is not whitespace, or an image."""
    return _read(div).says_something


@lru_cache(maxsize=512)
def _read(div: str) -> Verdict:
    """Both answers from one parse; a resource's narrative is asked about twice, and the
    same narrative comes again with each version of the resource."""
    if "<!" in div.replace("<!--", ""):
        return Verdict(False, False)  # DOCTYPE, ENTITY or CDATA: none belongs in a narrative
    try:
        root = ElementTree.fromstring(_NAMED.sub(_character, div))
    except ElementTree.ParseError:
        return Verdict(False, False)
    said = any(text.strip() for text in root.itertext())
    if root.tag != f"{XHTML}div":
        return Verdict(False, said)
    ok = True
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith(XHTML):
            ok = False
            break
        name = element.tag.removeprefix(XHTML)
        said = said or name == "img"
        if name not in ELEMENTS or not _attributes_allowed(name, element.attrib):
            ok = False
            break
    return Verdict(ok, said)


def _attributes_allowed(element: str, attributes: dict[str, str]) -> bool:
    extra = _ELEMENT_ATTRIBUTES.get(element, frozenset())
    for name, value in attributes.items():
        local = name.removeprefix(_XML)
        if local not in _COMMON_ATTRIBUTES and local not in extra:
            return False
        if local in _LINKS and value.strip().lower().startswith(_UNSAFE_SCHEMES):
            return False
    return True


def _character(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    character = html.entities.html5.get(f"{name};")
    if character is None:
        return match.group(0)  # not an entity of HTML either: the parser refuses it
    return html.escape(character)
