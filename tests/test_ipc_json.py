"""The json channel's bytes against ``JSON.stringify``, value by value.

``encode_json`` writes the common message shapes with its own encoder
(``_ipc/jsonfast.py``) and everything else with json's; both must give
``JSON.stringify(value) + '\\n'`` as UTF-8, byte for byte.  Every value here
goes to one ``node`` (as JSON, with markers for what JSON cannot carry) and
back as the base64 of its bytes.  test_ipc_cross.py checks whole channels;
this checks many values cheaply, and that the fast encoder took the shapes
it is meant to take.

Not compared, on purpose: dict keys that look like array indexes ('1'),
which a JavaScript object puts first and a Python dict keeps in insertion
order, and ints beyond 2**53, which a JavaScript Number cannot hold (the
channel writes them in full, as json does).
"""

from __future__ import annotations

import base64
import json
import math
import random
from typing import Any

import pytest

from childproc._ipc import jsonfast
from childproc._ipc.wire import _exact_json, encode_json
from nodecmp import node_cases, requires_node

pytestmark = requires_node

# Markers: {"$nan": 1}, {"$inf": 1}, {"$ninf": 1}; anything else is plain JSON.
_RUNNER = """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const revive = (v) => {
  if (Array.isArray(v)) return v.map(revive);
  if (v === null || typeof v !== 'object') return v;
  if ('$nan' in v) return NaN;
  if ('$inf' in v) return Infinity;
  if ('$ninf' in v) return -Infinity;
  const o = {};
  for (const k of Object.keys(v)) o[k] = revive(v[k]);
  return o;
};
const out = cases.map((c) => Buffer.from(JSON.stringify(revive(c)) + '\\n', 'utf8').toString('base64'));
process.stdout.write('\\n' + JSON.stringify(out));
"""


def _marked(value: Any) -> Any:
    """``value`` as plain JSON for node (tuples become arrays, as on the wire)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$nan": 1} if value != value else {"$inf": 1} if value > 0 else {"$ninf": 1}
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(v) for v in value]
    return value


def _node_bytes(values: list[Any]) -> list[bytes]:
    # ensure_ascii: a lone surrogate travels as its escape, which JSON.parse
    # turns back into the lone surrogate.
    answer = node_cases(_RUNNER, json.loads(json.dumps([_marked(v) for v in values])))
    return [base64.b64decode(b) for b in answer]


def _assert_like_node(values: list[Any]) -> None:
    ours = [encode_json(v) for v in values]
    node = _node_bytes(values)
    diff = [(v, n, o) for v, n, o in zip(values, node, ours) if n != o]
    assert not diff, f"{len(diff)} of {len(values)} differ (value, node, childproc): {diff[:5]}"


_CONTROLS = "".join(chr(c) for c in range(0x20)) + "\x7f"
STRINGS = [
    "", "hello", _CONTROLS, 'quote " backslash \\ slash /', "\u2028\u2029", "é ß 中文 😀",
    "\ud800", "a\udc00b", "\udc00\ud800", "é\ud800 ok", "%s %d {} {0} }}", "\ufeff\uffff",
]
NUMBERS = [
    0, 1, -1, 2**31, 2**53 - 1, -(2**53 - 1), True, False, None,
    0.1, 0.1 + 0.2, -0.0, 2.0, 100.0, 1e16, 1e20, 1e21, 1.5e21, 1e-6, 1e-7, 1.5e-10, 123456.789,
    2.5e-3, 5e-324, 1.7976931348623157e308, float(2**53), float(2**60), 8.494214697764402e19, float("nan"), float("inf"), float("-inf"),
]
SHAPES = [
    {"seq": 1, "cmd": "ping", "ok": True, "data": "hello"},
    # The same keys with other value types: the shape's other branch.
    {"seq": 2.5, "cmd": None, "ok": False, "data": ["x", 1, {"y": None}]},
    {"seq": "3", "cmd": {"n": []}, "ok": 0, "data": ("t", 1.0)},
    {"seq": 1, "cmd": "ping", "ok": True, "data": "a\nb"},
    {}, [], (), [[]], {"e": {}}, {"a": {"b": {"c": [1, [2, [3.5]]]}}},
    {s: s for s in STRINGS},  # the strings as keys too
    {f"k{i}": i * 0.5 for i in range(40)},  # past the shape limit on keys
    {"n": NUMBERS, "t": tuple(NUMBERS)},
]


def test_common_shapes_are_written_as_json_stringify_writes_them():
    values = STRINGS + NUMBERS + SHAPES + [{"v": v} for v in STRINGS + NUMBERS]
    for v in values:
        jsonfast.stringify(v)  # each is one the fast encoder takes (no KeyError)
    _assert_like_node(values)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 4)
    if kind == 0:
        return "".join(rng.choice(STRINGS[1:6] + ["\x00", "\ud800", '"']) for _ in range(rng.randrange(3)))
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    if kind == 3:
        return rng.randint(-(2**53 - 1), 2**53 - 1)
    if kind in (4, 5):
        keys = rng.choice([("seq", "cmd", "ok", "data"), ("a",), ("x", "y")])
        return {k: _random_value(rng, depth + 1) for k in keys}
    items = [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return items if kind == 6 else tuple(items)


def test_random_messages_are_written_as_json_stringify_writes_them():
    # Recurring key sets with values of changing types, as a channel sees them.
    rng = random.Random(18)
    values = [_random_value(rng) for _ in range(400)]
    _assert_like_node(values)


@pytest.mark.parametrize(
    "value",
    [b"\x00\xff", {"b": bytearray(b"x")}, {1: "int key"}, {"s": {1, 2}}, [frozenset()]],
    ids=["bytes", "bytearray", "int-key", "set", "frozenset"],
)
def test_other_values_take_the_exact_encoder(value):
    with pytest.raises(KeyError):
        jsonfast.stringify(value)
    assert encode_json(value) == (_exact_json(value) + "\n").encode()


def test_a_cycle_is_still_refused_as_node_refuses_it():
    looped: list[Any] = []
    looped.append({"again": looped})
    with pytest.raises(TypeError, match="circular structure"):
        encode_json(looped)
