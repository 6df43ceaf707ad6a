"""Price phrases in a query: ``"under 50"``, ``"$20 to $40"``, ``"between 20 and 40"``...

``extract_prices`` reads the output of ``normalize.prepare`` (lowercased, NFKC, symbols such
as ``$`` and ``<`` kept) and returns the price bounds it found with the text that is left once
the phrases are cut out. An amount followed by a unit (``"under 5 lbs"``, ``"over 30 inch"``)
is a measurement, not a price, and is left alone, as are sizes and model codes (``"2x4"``,
``"1-1/2"``). An amount with a currency but no comparator (``"50 dollars"``) is read as a
budget: an upper bound.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

_log = logging.getLogger(__name__)

_CUR_PRE = r"(?:us\$|\$|₹|£|€|(?<![\w])(?:rs\.?|inr|usd|eur|gbp)(?![a-z]))"
_CUR_POST = r"(?:\$|₹|£|€|(?:dollars?|bucks|rs\.?|rupees?|inr|usd|euros?|eur|gbp)(?![a-z]))"
_UNITS = (
    "in|inch|inches|ft|feet|foot|mm|cm|m|meters?|metres?|yds?|yards?|gal|gals|gallons?|qt|"
    "quarts?|pints?|l|liters?|litres?|ml|oz|ounces?|lb|lbs|pounds?|kg|g|grams?|tons?|v|volts?|"
    "w|watts?|kw|kwh|amps?|a|ah|mah|btu|hp|psi|cfm|gpm|rpm|hz|gauge|ga|awg|pc|pcs|pieces?|pk|"
    "packs?|count|ct|sq|sqft|cu|x|percent|deg|degrees?|years?|yrs?|months?|days?|hours?|hrs?|"
    "mins?|minutes?|people|persons?|seats?|seater|drawers?|doors?|lights?|bulbs?|gb|tb|mp|cups?|"
    "grit|lumens?|ohms?|mph|ply|mil|teeth|tooth|shelf|shelves|tiers?|steps?|panels?|burners?|"
    "bottles?|k|cc|sheets?|rolls?"
)
_NUM = r"\d+(?:\.\d+)?"
_BEFORE = r"(?<![\w/.\-])"
_AFTER = rf"(?![\w/%°\"']|[.\-]\d|\s?(?:{_UNITS})(?![\w]))"
_LEAD = r"(?:(?:for|at|priced|price|prices|costing|costs?|budget)\s+)*"
_MAX_WORDS = (
    r"under|below|less\s+than|lesser\s+than|cheaper\s+than|lower\s+than|up\s?to|within|"
    r"max|maximum|at\s+most|not\s+more\s+than|no\s+more\s+than|<=|=<|<|≤"
)
_MIN_WORDS = (
    r"over|above|more\s+than|greater\s+than|higher\s+than|at\s+least|min|minimum|"
    r"starting\s+(?:at|from)|from|>=|=>|>|≥"
)
_MAX_AFTER = r"and\s+(?:under|below|less)|or\s+(?:less|below|under|cheaper)|max|or\s+lower"
_MIN_AFTER = r"and\s+(?:over|above|up|more)|or\s+(?:more|above|over|higher)|\+|plus"


def _amount(name: str, guard: bool = True) -> str:
    before = _BEFORE if guard else ""
    return (
        rf"(?P<{name}_pre>{_CUR_PRE}\s?)?{before}(?P<{name}>{_NUM})"
        rf"(?P<{name}_post>\s?{_CUR_POST})?"
    )


def _compile(body: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){_LEAD}{body}{_AFTER}")


_A, _B = _amount("a"), _amount("b", guard=False)
_RANGES = (
    _compile(rf"between\s+{_A}\s*(?:and|-|to)\s*{_B}"),
    _compile(rf"from\s+{_A}\s*(?:to|-|until|till)\s*{_B}"),
)
_BARE_RANGE = _compile(rf"{_A}\s*(?:-|to)\s*{_B}")
_MAX = _compile(rf"(?:{_MAX_WORDS})\s*{_A}")
_MIN = _compile(rf"(?:{_MIN_WORDS})\s*{_A}")
_MAX_SUFFIX = re.compile(rf"(?<![\w.\-/]){_A}\s*(?:{_MAX_AFTER})(?![\w])")
_MIN_SUFFIX = re.compile(rf"(?<![\w.\-/]){_A}\s*(?:{_MIN_AFTER})(?![\w])")
_BUDGET = _compile(_A)


@dataclass(frozen=True)
class PriceMatch:
    """What ``extract_prices`` found.

    Attributes
    ----------
    price_min, price_max
        The bounds (None when the query sets none).
    text
        The input with the price phrases cut out, whitespace collapsed.
    phrases
        The phrases that were cut, in the order found.
    """

    price_min: float | None
    price_max: float | None
    text: str
    phrases: tuple[str, ...]


def _has_currency(m: re.Match[str], *names: str) -> bool:
    return any(m.group(f"{n}_pre") or m.group(f"{n}_post") for n in names)


def extract_prices(prepared: str, *, bare_ranges: bool = True) -> PriceMatch:
    """The price bounds in a query and the query without its price phrases.

    Parameters
    ----------
    prepared
        The query after ``normalize.prepare`` (lowercase, symbols kept).
    bare_ranges
        Read ``"20-40"`` and ``"20 to 40"`` without a currency as a price range.

    Returns
    -------
    PriceMatch
        The bounds, the remaining text and the phrases removed.
    """
    lows: list[float] = []
    highs: list[float] = []
    phrases: list[str] = []
    text = prepared

    def cut(m: re.Match[str]) -> str:
        phrases.append(m.group(0).strip())
        return " "

    def take(
        pattern: re.Pattern[str], kind: str, need_currency: bool = False, ordered: bool = False
    ) -> None:
        nonlocal text

        def repl(m: re.Match[str]) -> str:
            names = ("a", "b") if kind == "range" else ("a",)
            if need_currency and not _has_currency(m, *names):
                return m.group(0)
            a = float(m.group("a"))
            if kind == "range":
                b = float(m.group("b"))
                if ordered and a >= b:
                    return m.group(0)
                lows.append(min(a, b))
                highs.append(max(a, b))
            elif kind == "max":
                highs.append(a)
            else:
                lows.append(a)
            return cut(m)

        text = pattern.sub(repl, text)

    for pattern in _RANGES:
        take(pattern, "range")
    take(_BARE_RANGE, "range", need_currency=not bare_ranges, ordered=True)
    take(_MAX, "max")
    take(_MIN, "min")
    take(_MAX_SUFFIX, "max")
    take(_MIN_SUFFIX, "min")
    take(_BUDGET, "max", need_currency=True)
    low = max(lows) if lows else None
    high = min(highs) if highs else None
    if low is not None and high is not None and low > high:
        low, high = high, low
    rest = re.sub(r"\s+", " ", text).strip()
    if phrases:
        _log.debug("price phrases %s -> [%s, %s]", phrases, low, high)
    return PriceMatch(low, high, rest, tuple(phrases))
