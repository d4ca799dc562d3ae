"""The one command layer: option specs, value parsing and validation for console and Discord.

Both front ends hand raw option values (strings from the console, typed values from Discord) to
``parse_options``; the Discord adapter also builds its slash-command ranges and choices from these
specs, so the two accept and reject exactly the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import UserError
from bot.styles import STYLE_NAMES
from models.theory import ALL_KEYS, Key, TheoryError

BARS_MIN, BARS_MAX = 1, 32
TEMPO_MIN, TEMPO_MAX = 40, 240
TEMP_MIN, TEMP_MAX = 0.1, 2.0
SEED_MIN, SEED_MAX = 0, 2**31 - 1
CLIP_ID_MAX = 2**53  # Discord integer options stop at 2**53
KEY_CHOICES: tuple[str, ...] = tuple(k.name for k in ALL_KEYS)  # 24 keys: fits Discord's 25
PERIODS = ("day", "week", "month", "all")


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: str  # int | float | str | choice
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False

    def parse(self, raw: Any) -> Any:
        """Convert and check one value; raises UserError with a one-line message."""
        if self.kind == "int":
            value = _to_int(self.name, raw)
        elif self.kind == "float":
            value = _to_float(self.name, raw)
        else:
            value = str(raw).strip()
            if not value:
                raise UserError(f"{self.name} must not be empty")
        if self.kind in ("int", "float") and self.min is not None and self.max is not None and \
                not self.min <= value <= self.max:
            raise UserError(f"{self.name} must be between {_fmt(self.min)} and {_fmt(self.max)} "
                            f"(got {_fmt(value)})")
        if self.kind == "choice" and self.choices is not None:
            folded = {c.lower(): c for c in self.choices}
            if value.lower() not in folded:
                raise UserError(f"unknown {self.name} {value!r}: choose one of "
                                f"{', '.join(self.choices)}")
            value = folded[value.lower()]
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _to_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise UserError(f"{name} must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise UserError(f"{name} must be a whole number (got {raw:g})")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise UserError(f"{name} must be a whole number (got {str(raw)[:20]!r})") from None


def _to_float(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise UserError(f"{name} must be a number")
    try:
        value = float(raw if isinstance(raw, int | float) else str(raw).strip())
    except ValueError:
        raise UserError(f"{name} must be a number (got {str(raw)[:20]!r})") from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number")
    return value


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    options: tuple[OptionSpec, ...] = ()

    def option(self, name: str) -> OptionSpec:
        return next(o for o in self.options if o.name == name)


COMMANDS: dict[str, CommandSpec] = {
    "compose": CommandSpec("compose", "Compose a new piece: MP3, MIDI and piano roll", (
        OptionSpec("style", "choice", "musical style (default jazz)", choices=STYLE_NAMES),
        OptionSpec("bars", "int", f"length in bars ({BARS_MIN}-{BARS_MAX}, default 8)",
                   BARS_MIN, BARS_MAX),
        OptionSpec("tempo", "int", f"beats per minute ({TEMPO_MIN}-{TEMPO_MAX}; default: "
                   "typical for the style)", TEMPO_MIN, TEMPO_MAX),
        OptionSpec("key", "str", "key, e.g. C, F#m, Bb (default: typical for the style)"),
        OptionSpec("temperature", "float", f"randomness ({TEMP_MIN:g}-{TEMP_MAX:g}, default 1.0)",
                   TEMP_MIN, TEMP_MAX),
        OptionSpec("seed", "int", f"random seed ({SEED_MIN}-{SEED_MAX}) to reproduce a piece",
                   SEED_MIN, SEED_MAX),
        OptionSpec("model", "str", "generator model (default lstm)"),
    )),
    "rate": CommandSpec("rate", "Rate a clip from 1 to 5 stars", (
        OptionSpec("clip", "int", "clip number", 1, CLIP_ID_MAX, required=True),
        OptionSpec("stars", "int", "1 (poor) to 5 (great)", 1, 5, required=True),
    )),
    "clip": CommandSpec("clip", "Show a stored clip again", (
        OptionSpec("clip", "int", "clip number", 1, CLIP_ID_MAX, required=True),
    )),
    "top": CommandSpec("top", "The best-rated clips (Bayesian average of the stars)", (
        OptionSpec("style", "choice", "only this style", choices=STYLE_NAMES),
        OptionSpec("model", "str", "only this model"),
        OptionSpec("period", "choice", "only clips from the last day/week/month",
                   choices=PERIODS),
    )),
    "stats": CommandSpec("stats", "Mean opinion score ± 95% CI, clips and raters per model and "
                         "style", (
        OptionSpec("period", "choice", "only clips from the last day/week/month",
                   choices=PERIODS),
    )),
    "help": CommandSpec("help", "How to use Cadenza"),
}


def parse_options(command: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate raw option values for ``command``; unknown or missing options are errors."""
    spec = COMMANDS.get(command)
    if spec is None:
        raise UserError(f"unknown command /{command}: try /help")
    known = {o.name for o in spec.options}
    extra = [k for k in raw if k not in known]
    if extra:
        hint = f" ({', '.join(sorted(known))})" if known else ""
        raise UserError(f"/{command} has no option {extra[0]!r}{hint}")
    out: dict[str, Any] = {}
    for opt in spec.options:
        value = raw.get(opt.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if opt.required:
                raise UserError(f"/{command} needs {opt.name}:<{opt.kind}>")
            continue
        out[opt.name] = opt.parse(value)
    if command == "compose" and "key" in out:
        out["key"] = parse_key(out["key"])
    return out


def parse_key(text: str) -> str:
    """Normalise a key name ('f# minor' -> 'F#m'); unknown spellings are a UserError."""
    try:
        return Key.parse(text).name
    except TheoryError:
        raise UserError(f"unknown key {text!r}: use a note name with an optional m, e.g. C, "
                        "F#m, Bb") from None
