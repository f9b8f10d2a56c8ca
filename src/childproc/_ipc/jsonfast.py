"""``JSON.stringify`` of the messages most sends carry, without json's encoder.

On CPython 3.11 json's C encoder takes about 1.1 us for a four-key dict
(it lists the dict's items, keeps a circular-reference marker per container
and gathers a dozen small strings); :func:`stringify` writes the same text
with one f-string per dict, compiled once for each key set (a *shape*).

It takes dicts with ``str`` keys, lists and tuples, holding ``str``, ``int``,
``bool``, ``None``, ``float`` and such containers again -- each by its exact
type, so a subclass (an ``IntEnum``, a ``str`` subclass, an ``OrderedDict``)
is not taken.  Everything else (``bytes``, datetimes, sets, non-``str`` keys,
a cycle) raises ``KeyError`` or ``RecursionError``: the caller then takes
json's encoder, which has the rest of the rules (see ``wire.encode_json``).

The text is JSON.stringify's: no spaces, keys in the dict's order, strings
escaped by json's C ``encode_basestring`` as JSON.stringify escapes them
(quote, backslash, ``\\b\\f\\n\\r\\t``, other controls as ``\\u00xx``, and
nothing else: a lone surrogate is left for the caller's UTF-8 step), ints in
full, floats as JavaScript writes numbers (:func:`js_number`).
"""

from __future__ import annotations

import math

try:
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - other Pythons
    from json.encoder import py_encode_basestring as _quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["js_number", "stringify"]

_MAX_SHAPES = 512  # key sets given their own function; later ones share _any_dict
_MAX_KEYS = 32  # a dict with more keys takes _any_dict (one f-string argument per key)


def js_number(x: float) -> str:
    """A float as JavaScript's Number#toString writes it (JSON.stringify's
    numbers): the same shortest digits as Python's repr, laid out by
    ECMA-262's rules -- plain below 1e21, '0.000001' down to 1e-6, and
    exponents without padding ('1e-7', not '1e-07'); -0 is '0'."""
    if x != x or x in (math.inf, -math.inf):
        return "null"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 9007199254740992.0:
        # Below 2**53 an integral float's shortest digits are all its digits;
        # above, str(int(x)) would write the binary value's (2**60 ends in
        # ...846976, JavaScript's 2**60 in ...847000).
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    raw = whole + frac
    lead = len(raw) - len(raw.lstrip("0"))
    digits = raw.strip("0")
    k = len(digits)
    n = len(whole) - lead + int(exp or 0)  # the value is 0.<digits> x 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = (digits if k == 1 else digits[0] + "." + digits[1:]) + ("e+" if e >= 0 else "e-") + str(abs(e))
    return sign + text


_BOOLS = ("false", "true")  # indexed by the bool itself


def _array(value: list[Any] | tuple[Any, ...]) -> str:
    return "[" + ",".join([_BY_TYPE[type(item)](item) for item in value]) + "]"


def _object(value: dict[Any, Any]) -> str:
    keys = tuple(value)
    shape = _shapes.get(keys)
    if shape is None:
        shape = _new_shape(keys, value)
    return shape(value)


def _any_dict(value: dict[Any, Any]) -> str:
    """A dict of any size or key set, item by item (no shape compiled)."""
    parts = []
    for key, item in value.items():
        if type(key) is not str:
            raise KeyError(key)  # json's encoder has the rules for other keys
        parts.append(_quote(key) + ":" + _BY_TYPE[type(item)](item))
    return "{" + ",".join(parts) + "}"


# What writes each exact type (the lookup is the type check: any other type
# is a KeyError).
_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: _quote,
    int: int.__repr__,
    bool: _BOOLS.__getitem__,
    type(None): {None: "null"}.__getitem__,
    float: js_number,
    dict: _object,
    list: _array,
    tuple: _array,
}

# In a shape's fast branch, each value whose type is the one the first
# dict of that key set held is written inline (for an int, the f-string's
# own str(), which is int's repr).
_INLINE = {str: "{Q(v%d)}", int: "{v%d}", bool: "{B[v%d]}", type(None): "null",
           float: "{J(v%d)}", dict: "{O(v%d)}", list: "{A(v%d)}", tuple: "{A(v%d)}"}

_shapes: dict[tuple[Any, ...], Callable[[dict[Any, Any]], str]] = {}


def _new_shape(keys: tuple[Any, ...], sample: dict[Any, Any]) -> Callable[[dict[Any, Any]], str]:
    """The function that writes a dict with these keys, in this order: one
    f-string, with the value types of ``sample`` written inline and any
    other types looked up.  The generated source holds only names and
    indices; the keys' JSON text is passed in as constants (K0, K1, ...)."""
    if not all(type(k) is str for k in keys):
        raise KeyError(keys)
    if not keys:
        return lambda value: "{}"
    if len(keys) > _MAX_KEYS or len(_shapes) >= _MAX_SHAPES:
        return _any_dict
    names: dict[str, Any] = {"Q": _quote, "B": _BOOLS, "J": js_number, "O": _object, "A": _array, "E": _BY_TYPE}
    checks, inline, looked_up = [], [], []
    for i, (key, item) in enumerate(zip(keys, sample.values())):
        names[f"K{i}"] = ("{" if i == 0 else ",") + _quote(key) + ":"
        looked_up.append(f"{{K{i}}}{{E[type(v{i})](v{i})}}")
        kind = type(item)
        if kind in _INLINE:
            names[f"T{i}"] = kind
            checks.append(f"type(v{i}) is T{i}")
            inline.append(f"{{K{i}}}" + _INLINE[kind] % ((i,) * _INLINE[kind].count("%d")))
        else:
            inline.append(looked_up[-1])
    values = ", ".join(f"v{i}" for i in range(len(keys))) + ","
    source = (
        f"def shape(m):\n"
        f"    {values} = m.values()\n"
        f"    if {' and '.join(checks) or 'True'}:\n"
        f"        return f'{''.join(inline)}}}}}'\n"
        f"    return f'{''.join(looked_up)}}}}}'\n"
    )
    exec(source, names)  # noqa: S102 - the source is built from names and indices only
    shape: Callable[[dict[Any, Any]], str] = names["shape"]
    _shapes[keys] = shape
    return shape


def stringify(message: Any) -> str:
    """``JSON.stringify(message)`` for the shapes above; ``KeyError`` or
    ``RecursionError`` for anything else."""
    if type(message) is dict:  # _object inline: most messages are dicts
        shape = _shapes.get(tuple(message))
        if shape is not None:
            return shape(message)
    return _BY_TYPE[type(message)](message)
