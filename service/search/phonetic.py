"""How a name sounds, for the ``phonetic`` search parameters (R4 leaves the algorithm to the
server): the American Soundex code of each word, so ``Smyth`` finds ``Smith`` and ``Jon``
finds ``John``. One function serves both sides: what is indexed on write, and what a search
value is turned into, so the two always agree.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z]+")
_DIGITS = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def sounds(normalised: str) -> str:
    """The codes of the words of already normalised (lower-case, unaccented) text, in order;
    text with no letters is kept as it is, so it only ever matches itself."""
    codes = [_soundex(word) for word in _WORD.findall(normalised)]
    return " ".join(codes) if codes else normalised


def _soundex(word: str) -> str:
    """A letter and three digits; letters coded alike count once unless a vowel parts them
    (``h`` and ``w`` do not)."""
    digits: list[str] = []
    last = _DIGITS.get(word[0], "")
    for letter in word[1:]:
        if letter in "hw":
            continue
        code = _DIGITS.get(letter, "")
        if code and code != last:
            digits.append(code)
        last = code
    return (word[0] + "".join(digits) + "000")[:4]
