"""Property tests of the shared option layer (``cadenza.options``): whatever a member, a forged
interaction or a typed console line hands it, for every command, the answer is parsed options or
one short ``UserError`` line, never another exception. Over 10,000 cases a run, with huge and
non-finite numbers and 10,000-character strings."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.console import parse_line
from cadenza.errors import UserError
from cadenza.options import COMMANDS, parse_options

COMMAND_NAMES = sorted(COMMANDS)
MAX_MESSAGE = 400  # one line a member can read; the 2,000-character Discord limit is far off

huge_ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]),
)
long_text = st.builds(lambda c, n: c * n, st.characters(), st.integers(0, 10_000))
digits = st.builds(lambda c, n: c * n, st.sampled_from("9-1+0.e"), st.integers(1, 10_000))
texts = st.one_of(
    st.text(max_size=60),
    long_text,
    digits,
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "٣",
                     "yes", "no", "3/4", "1-4", "4-1", "0-0", "C#m", "H", "\x00", "\n", "🎷"]),
    st.builds(lambda n: "9" * n, st.integers(19, 5000)),
)
values = st.one_of(huge_ints, floats, texts, st.booleans(), st.none(),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                      st.integers(), max_size=2))


@st.composite
def raw_options(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    command = draw(st.sampled_from(COMMAND_NAMES))
    names = [o.name for o in COMMANDS[command].options]
    keys = draw(st.lists(st.one_of(st.sampled_from(names or ["x"]), st.text(max_size=12)),
                         max_size=len(names) + 1, unique=True))
    return command, {k: draw(values) for k in keys}


def check(error: UserError) -> None:
    text = str(error)
    assert text and "\n" not in text and len(text) <= MAX_MESSAGE, text[:200]
    assert "Traceback" not in text


@settings(max_examples=10_000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw_options())
def test_any_raw_options_give_options_or_one_user_error(case: tuple[str, dict]) -> None:
    command, raw = case
    try:
        out = parse_options(command, raw)
    except UserError as e:
        check(e)
        return
    spec = COMMANDS[command]
    assert set(out) <= {o.name for o in spec.options}
    for opt in spec.options:
        if opt.name in out and opt.kind in ("int", "float") and opt.min is not None:
            assert opt.min <= out[opt.name] <= opt.max  # type: ignore[operator]
            assert math.isfinite(out[opt.name])


@settings(max_examples=1_000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(COMMAND_NAMES), st.lists(st.tuples(st.text(max_size=12), texts),
                                                max_size=4))
def test_any_typed_console_line_gives_options_or_one_user_error(
        command: str, pairs: list[tuple[str, str]]) -> None:
    line = f"/{command} " + " ".join(f'{name}:"{value}"' for name, value in pairs)
    try:
        parsed = parse_line(line)
        if parsed is not None:
            parse_options(parsed.command, parsed.options)
    except UserError as e:
        check(e)


def test_the_cases_the_fuzzing_found_first() -> None:
    # each of these crashed or echoed the whole input before
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("clip", {"clip": 10**400}, "clip must be between 1 and 9007199254740992 (got "
                                    "1000000000000000000…)"),
        ("clip", {"clip": "9" * 400}, "clip is out of range (got 9999999999999999999…)"),
        ("compose", {"tempo": "9" * 400}, "tempo is out of range (got 9999999999999999999…)"),
        ("compose", {"temperature": 10**400}, "temperature is out of range"),
        ("compose", {"temperature": "nan"}, "temperature must be a finite number"),
        ("compose", {"style": "x" * 10_000}, "unknown style 'xxx"),
        ("compose", {"key": "y" * 10_000}, "unknown key 'yyy"),
        ("top", {"z" * 10_000: 1}, "/top has no option 'zzz"),
    ]
    for command, raw, start in cases:
        try:
            parse_options(command, raw)
        except UserError as e:
            check(e)
            assert str(e).startswith(start), str(e)
        else:
            raise AssertionError(f"{command} {list(raw)} was accepted")
