"""The one command layer: option specs, value parsing and validation for console and Discord.

Both front ends hand raw option values (strings from the console, typed values from Discord) to
``parse_options``; the Discord adapter also builds its slash-command ranges and choices from these
specs, so the two accept and reject exactly the same inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cadenza.errors import UserError, shown
from cadenza.music.form import FormError, lay_out, parse_form
from cadenza.music.motif import MAX_MOTIF_BARS
from cadenza.music.score import Meter
from cadenza.music.theory import ALL_KEYS, Key, TheoryError
from cadenza.music.tokens import METERS
from cadenza.styles import DEFAULT_TEMPERATURE, STYLE_NAMES

BARS_MIN, BARS_MAX = 1, 32
TEMPO_MIN, TEMPO_MAX = 40, 240
TEMP_MIN, TEMP_MAX = 0.1, 2.0
SEED_MIN, SEED_MAX = 0, 2**31 - 1
CLIP_ID_MAX = 2**53  # Discord integer options stop at 2**53
KEY_CHOICES: tuple[str, ...] = tuple(k.name for k in ALL_KEYS)  # 24 keys: fits Discord's 25
PERIODS = ("day", "week", "month", "all")
METER_CHOICES: tuple[str, ...] = tuple(f"{n}/{d}" for n, d in METERS)
FORM_SUGGESTIONS = ("aaba", "aab", "aabb", "abac", "abab", "ab", "a")
CONTINUE_MAX = 16
BLEND_MIN, BLEND_MAX = 6, 32  # 6: A, one phrase between, B (blends decode 2-bar phrases)
PAGE_MAX = 1000
ARENA_BARS_MAX = 16
ARENA_CHOICES = ("a", "b", "tie", "bad")  # A better, B better, tie, both bad
SEED_NAME_MAX = 32
PARTY_COUNT_MIN, PARTY_COUNT_MAX, PARTY_COUNT_DEFAULT = 2, 10, 5
PARTY_BARS_MAX, PARTY_BARS_DEFAULT = 16, 8
_SEED_NAME = re.compile(r"[^\W_][\w '.-]*")  # starts with a letter or digit
_BAR_RANGE = re.compile(r"(\d{1,4})(?:\s*(?:-|–|—|\.\.|to)\s*(\d{1,4}))?")
MAX_INT_CHARS = 40  # longer digit strings are refused before int() reads them
_TRUE = ("true", "yes", "y", "on", "1")
_FALSE = ("false", "no", "n", "off", "0")


# Hint values for "needs a value" messages, where the kind alone gives a poor one.
_EXAMPLES: dict[str, str] = {
    "style": "blues", "bars": "12", "tempo": "96", "key": "E", "temperature": "0.8", "seed": "7",
    "model": "lstm", "motif": "riff", "name": "riff", "stars": "4", "notes": '"C4/8 E G"',
    "file": "song.mid", "meter": "3/4", "query": "riff", "a": "riff", "b": "lick",
    "form": "aaba",
}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: str  # int | float | str | choice | bool | file
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    suggest: str | None = None  # free text with suggestions: 'keys', 'models' or 'seeds'
    convert: Callable[[Any], Any] | None = None  # normalises a parsed value (a key's name ...)

    def read(self, raw: Any) -> Any:
        """The one reader of a value given for this option, typed at the console or sent by
        Discord: checked, converted and normalised; a UserError says what is wrong."""
        if isinstance(raw, str) and not raw.strip():
            # Given but empty (Discord never sends that; a typed "bars:" or key:"" does):
            # silently using the default would hide the mistake.
            raise UserError(f"{self.name} needs a value (it was given empty)")
        value = self.parse(raw)
        return value if self.convert is None else self.convert(value)

    def example(self) -> str:
        """A value to show in a hint."""
        if self.name in _EXAMPLES:
            return _EXAMPLES[self.name]
        if self.kind == "choice" and self.choices:
            return self.choices[0]
        if self.kind == "bool":
            return "yes"
        if self.kind in ("int", "float"):
            return _fmt(self.min) if self.min is not None else "1"
        return "…"

    def parse(self, raw: Any) -> Any:
        """Convert and check one value; raises UserError with a one-line message."""
        if self.kind == "int":
            value = _to_int(self.name, raw)
        elif self.kind == "float":
            value = _to_float(self.name, raw)
        elif self.kind == "bool":
            return _to_bool(self.name, raw)
        elif self.kind == "file" and not isinstance(raw, str):
            return raw  # an adapter's upload object; the console passes a path
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
                raise UserError(f"unknown {self.name} {shown(value)}: choose one of "
                                f"{', '.join(self.choices)}")
            value = folded[value.lower()]
        return value


MAX_SHOWN_DIGITS = 20  # a 400-digit number is echoed as its first digits and "…"


def _fmt(x: float) -> str:
    """A number for a message: whole numbers without ".0", huge ones shortened. Never calls
    float() on an int (a 400-digit one overflows it)."""
    if isinstance(x, int) and not isinstance(x, bool):
        text = str(x)
    elif isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        text = str(int(x))
    else:
        text = f"{x:g}"
    return text if len(text) <= MAX_SHOWN_DIGITS else text[:MAX_SHOWN_DIGITS - 1] + "…"


def _to_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise UserError(f"{name} must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise UserError(f"{name} must be a whole number (got {raw:g})")
    text = str(raw).strip()
    # isdecimal, not isdigit: "¹" is a digit that int() refuses
    if len(text) > MAX_INT_CHARS and text.lstrip("+-").isdecimal():
        # int() refuses over 4300 digits, and no option takes more than 19 anyway
        raise UserError(f"{name} is out of range (got {_fmt(int(text[:MAX_INT_CHARS]))})")
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name} must be a whole number (got {shown(text, 20)})") from None


def _to_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(f"{name} must be true or false (got {shown(str(raw), 20)})")


def _to_float(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise UserError(f"{name} must be a number")
    try:
        value = float(raw if isinstance(raw, int | float) else str(raw).strip())
    except OverflowError:  # an int beyond float's range
        raise UserError(f"{name} is out of range (got {_fmt(raw)})") from None
    except ValueError:
        raise UserError(f"{name} must be a number (got {shown(str(raw), 20)})") from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number")
    return value


def parse_seed_name(text: str) -> str:
    """A seed name, spaces collapsed; the same rules wherever a name is typed."""
    name = " ".join(str(text).split())
    if len(name) > SEED_NAME_MAX:
        raise UserError(f"a seed name is at most {SEED_NAME_MAX} characters (got {len(name)})")
    if not _SEED_NAME.fullmatch(name):
        raise UserError(f"seed names use letters, digits, spaces and - _ ' . and start with a "
                        f"letter or digit (got {shown(name)})")
    return name


def parse_bar_range(text: str) -> tuple[int, int]:
    """'1-4' -> (1, 4); '3' -> (3, 3); en dashes, '..' and 'to' work too."""
    match = _BAR_RANGE.fullmatch(str(text).strip())
    if match is None:
        raise UserError(f"bars must be a range of bars such as 1-4 (got {shown(str(text), 20)})")
    first = int(match[1])
    last = int(match[2]) if match[2] else first
    if not 1 <= first <= last:
        raise UserError(f"bars {first}-{last} is not a range: the first bar is 1, and the range "
                        "runs forwards (e.g. 1-4)")
    return first, last


def parse_key(text: str) -> str:
    """Normalise a key name ('f# minor' -> 'F#m'); unknown spellings are a UserError."""
    try:
        return Key.parse(text).name
    except TheoryError:
        raise UserError(f"unknown key {shown(str(text))}: use a note name with an optional m, "
                        "e.g. C, F#m, Bb") from None


def _parse_form(text: str) -> str:
    try:
        return parse_form(text)
    except FormError as e:
        raise UserError(str(e)) from None



@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    options: tuple[OptionSpec, ...] = ()

    def option(self, name: str) -> OptionSpec:
        return next(o for o in self.options if o.name == name)


_STYLE = OptionSpec("style", "choice", "musical style (default jazz)", choices=STYLE_NAMES)
_RANDOM_SEED = OptionSpec("seed", "int", f"random seed ({SEED_MIN}-{SEED_MAX}) to reproduce a "
                          "piece", SEED_MIN, SEED_MAX)


def _clip(description: str = "clip number") -> OptionSpec:
    return OptionSpec("clip", "int", description, 1, CLIP_ID_MAX, required=True)


def _seed_name(description: str) -> OptionSpec:
    return OptionSpec("name", "str", description, required=True, suggest="seeds",
                      convert=parse_seed_name)


COMMANDS: dict[str, CommandSpec] = {
    "compose": CommandSpec("compose", "Compose a new piece: MP3, MIDI and piano roll", (
        _STYLE,
        OptionSpec("bars", "int", f"length in bars ({BARS_MIN}-{BARS_MAX}, default 8; new bars "
                   "after a motif)", BARS_MIN, BARS_MAX),
        OptionSpec("tempo", "int", f"beats per minute ({TEMPO_MIN}-{TEMPO_MAX}; default: "
                   "typical for the style)", TEMPO_MIN, TEMPO_MAX),
        OptionSpec("key", "str", "key, e.g. C, F#m, Bb (default: typical for the style)",
                   suggest="keys", convert=parse_key),
        OptionSpec("temperature", "float",
                   f"randomness ({TEMP_MIN:g}-{TEMP_MAX:g}; default: the style's, "
                   f"{DEFAULT_TEMPERATURE:g}, jazz and ragtime 1)",
                   TEMP_MIN, TEMP_MAX),
        _RANDOM_SEED,
        OptionSpec("model", "str", "generator model (default lstm)", suggest="models"),
        OptionSpec("motif", "str", "a shared seed (its name) to open the piece with and continue",
                   suggest="seeds", convert=parse_seed_name),
        OptionSpec("form", "str", "sections that come back, e.g. aaba, aab (blues), aabb, abac "
                   "(default: the style's usual form)", suggest="forms", convert=_parse_form),
    )),
    "continue": CommandSpec("continue", "Continue a clip: its music, then new bars", (
        _clip(),
        OptionSpec("bars", "int", f"new bars to add (1-{CONTINUE_MAX}, default 4)", 1,
                   CONTINUE_MAX),
        _RANDOM_SEED,
    )),
    "vary": CommandSpec("vary", "A variation of a clip: new notes over the same harmony and "
                        "rhythm", (_clip(), _RANDOM_SEED)),
    "reroll": CommandSpec("reroll", "A clip's request again with a new random seed (a seeded "
                          "clip keeps its seed)", (_clip(),)),
    "rate": CommandSpec("rate", "Rate a clip from 1 to 5 stars", (
        _clip(),
        OptionSpec("stars", "int", "1 (poor) to 5 (great)", 1, 5, required=True),
    )),
    "clip": CommandSpec("clip", "Show a stored clip again, with what it was built on", (
        _clip(),
    )),
    "publish": CommandSpec("publish", "Let every server with Cadenza play one of your clips "
                           "(it gets a public number), or take it back", (
        _clip("your clip's number"),
        OptionSpec("withdraw", "bool", "take it back: only this server can see it again"),
    )),
    "top": CommandSpec("top", "The best-rated clips (Bayesian average of the stars)", (
        OptionSpec("style", "choice", "only this style", choices=STYLE_NAMES),
        OptionSpec("model", "str", "only this model", suggest="models"),
        OptionSpec("period", "choice", "only clips from the last day/week/month",
                   choices=PERIODS),
    )),
    "stats": CommandSpec("stats", "Mean opinion score ± 95% CI, clips and raters per model and "
                         "style", (
        OptionSpec("period", "choice", "only clips from the last day/week/month",
                   choices=PERIODS),
    )),
    "seed share": CommandSpec("seed share", "Share a motif as a named seed: from a clip, a MIDI "
                              "file or typed notes", (
        OptionSpec("name", "str", f"a name for the seed (up to {SEED_NAME_MAX} letters, digits, "
                   "spaces, - _ ' .)", required=True, convert=parse_seed_name),
        OptionSpec("clip", "int", "take the music of this clip", 1, CLIP_ID_MAX),
        OptionSpec("bars", "str", f"with clip: a bar range such as 1-4 (at most "
                   f"{MAX_MOTIF_BARS} bars)"),
        OptionSpec("file", "file", "a MIDI file (.mid, up to 1 MiB)"),
        OptionSpec("notes", "str", 'notes as text, e.g. "C4/8 E4/8 G4/4 | A4/2" (see /help)'),
        OptionSpec("meter", "choice", "with notes: the meter (default 4/4)",
                   choices=METER_CHOICES),
        OptionSpec("public", "bool", "let everyone here use it (default: only you)"),
    )),
    "seed list": CommandSpec("seed list", "The seeds you can use here: yours and the public ones", (
        OptionSpec("query", "str", "only seeds whose name or owner contains this"),
        OptionSpec("page", "int", f"page number (1-{PAGE_MAX})", 1, PAGE_MAX),
    )),
    "seed show": CommandSpec("seed show", "Play a seed: audio, MIDI, piano roll and its notes", (
        _seed_name("the seed's name"),
    )),
    "seed delete": CommandSpec("seed delete", "Delete a seed (its owner or Manage Server); clips "
                               "built on it keep their credits", (
        _seed_name("the seed's name"),
    )),
    "seed tree": CommandSpec("seed tree", "Everything built on a seed, and who made it", (
        _seed_name("the seed's name"),
    )),
    "seed blend": CommandSpec("seed blend", "Morph from seed A to seed B through the VAE's latent "
                              "space", (
        OptionSpec("a", "str", "the seed to start from (its name)", required=True,
                   suggest="seeds", convert=parse_seed_name),
        OptionSpec("b", "str", "the seed to arrive at (its name)", required=True,
                   suggest="seeds", convert=parse_seed_name),
        OptionSpec("bars", "int", f"length in bars ({BLEND_MIN}-{BLEND_MAX}, default 8)",
                   BLEND_MIN, BLEND_MAX),
        _STYLE,
        _RANDOM_SEED,
    )),
    "arena new": CommandSpec("arena new", "Two clips of one prompt by two hidden models: vote "
                             "which is better", (
        OptionSpec("style", "choice", "musical style (default jazz)", choices=STYLE_NAMES),
        OptionSpec("bars", "int", f"length in bars (1-{ARENA_BARS_MAX}, default 4)", 1,
                   ARENA_BARS_MAX),
    )),
    "arena vote": CommandSpec("arena vote", "Vote on an arena pair (you can change it until you "
                              "reveal the models)", (
        OptionSpec("pair", "int", "the arena number", 1, CLIP_ID_MAX, required=True),
        OptionSpec("choice", "choice", "a: A is better, b: B is better, tie, bad: both are bad",
                   choices=ARENA_CHOICES, required=True),
    )),
    "arena reveal": CommandSpec("arena reveal", "Which model made A and which B (after your "
                                "vote, which is then final)", (
        OptionSpec("pair", "int", "the arena number", 1, CLIP_ID_MAX, required=True),
    )),
    "arena leaderboard": CommandSpec("arena leaderboard", "The models ranked by the arena's "
                                     "votes: Bradley-Terry ratings with 95% intervals", (
        OptionSpec("style", "choice", "only pairs of this style", choices=STYLE_NAMES),
    )),
    "play": CommandSpec("play", "Play a clip in your voice channel (no clip: this channel's "
                        "newest)", (
        OptionSpec("clip", "int", "clip number (default: the newest made in this channel)", 1,
                   CLIP_ID_MAX),
    )),
    "queue": CommandSpec("queue", "What is playing in voice, and what comes next"),
    "skip": CommandSpec("skip", "Skip the clip playing in voice"),
    "stop": CommandSpec("stop", "Stop playing, empty the queue and leave the voice channel"),
    "party new": CommandSpec("party new", "A listening party: compose clips, play them in voice "
                             "one after another, rate them as they play, then a ranking", (
        _STYLE,
        OptionSpec("count", "int", f"how many clips ({PARTY_COUNT_MIN}-{PARTY_COUNT_MAX}, "
                   f"default {PARTY_COUNT_DEFAULT})", PARTY_COUNT_MIN, PARTY_COUNT_MAX),
        OptionSpec("bars", "int", f"length of each clip in bars (1-{PARTY_BARS_MAX}, default "
                   f"{PARTY_BARS_DEFAULT})", 1, PARTY_BARS_MAX),
    )),
    "party arena": CommandSpec("party arena", "Play an arena pair in voice, A then B, models "
                               "hidden, and vote which is better", (
        OptionSpec("style", "choice", "musical style (default jazz)", choices=STYLE_NAMES),
        OptionSpec("bars", "int", f"length in bars (1-{ARENA_BARS_MAX}, default 4)", 1,
                   ARENA_BARS_MAX),
    )),
    "help": CommandSpec("help", "How to use Cadenza"),
}

# The commands that play in a voice channel (the console has none).
VOICE_COMMANDS = ("play", "queue", "skip", "stop", "party new", "party arena")

# The inline-notes syntax (cadenza.music.notation) in one paragraph, for /help in both front ends.
NOTES_HELP = ('Typed notes (/seed share name:riff notes:"C4/8 E4/8 G4/4 | A4/2"): a letter A-G, '
              "# or b, an octave (C4 is middle C), /N for the length (1 whole, 2 half, 4 "
              "quarter, 8 eighth, 16 sixteenth), a dot for dotted, t for triplet, ~ to tie, r "
              "for a rest, | between bars. A note without an octave is the nearest one; without "
              "/N it keeps the last length.")

# Discord shows "/seed share" as a subcommand of /seed; the group needs its own description.
GROUPS: dict[str, str] = {
    "seed": "Seeds: short motifs to share, continue, blend and credit",
    "arena": "The blind A/B arena: two hidden models, one prompt, your ears decide",
    "party": "Listening parties in voice: new clips played in turn and rated together",
}
# Discord cannot run a command that has subcommands, so there the arena starts with /arena new;
# the console also takes a bare "/arena style:folk" for it.
CONSOLE_DEFAULTS: dict[str, str] = {"arena": "arena new", "party": "party new"}


def parse_options(command: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate raw option values for ``command`` (the console's text); unknown or missing
    options are errors. Each value goes through its spec's ``read``, as on Discord."""
    spec = COMMANDS.get(command)
    if spec is None:
        raise UserError(f"unknown command /{command}: try /help")
    known = {o.name for o in spec.options}
    extra = [k for k in raw if k not in known]
    if extra:
        hint = f" ({', '.join(sorted(known))})" if known else ""
        raise UserError(f"/{command} has no option {shown(str(extra[0]))}{hint}")
    if command == "compose":
        _motif_hint(raw.get("seed"))
    out: dict[str, Any] = {}
    for opt in spec.options:
        value = raw.get(opt.name)
        if value is None:
            if opt.required:
                raise UserError(f"/{command} needs {opt.name}:<{opt.kind}>")
            continue
        out[opt.name] = opt.read(value)
    return check_options(command, out)


def given(command: str, **values: Any) -> dict[str, Any]:
    """Options each already read (Discord's transformers, ``cadenza.discord.specs``): those
    given, checked together."""
    return check_options(command, {k: v for k, v in values.items() if v is not None})


def check_options(command: str, out: dict[str, Any]) -> dict[str, Any]:
    """The rules between a command's options, once each has been read."""
    if command == "compose" and "form" in out and "bars" in out:
        try:
            lay_out(out["form"], out["bars"])
        except FormError as e:
            raise UserError(str(e)) from None
    if command == "seed share":
        _check_share(out)
    if command == "seed blend" and out["a"].casefold() == out["b"].casefold():
        raise UserError("a blend needs two different seeds")
    return out


def _motif_hint(seed: Any) -> None:
    """``/compose seed:riff``: a member who means the shared seed "riff" (seed: is the random
    seed, a number) is pointed to ``motif:``. Discord's client only sends numbers there."""
    if not isinstance(seed, str) or not seed.strip():
        return
    try:
        float(seed.strip())  # a number, whole or not, gets the usual checks
    except ValueError:
        name = " ".join(seed.split())[:40]  # one line: a pasted newline stays out of it
        quoted = f'"{name}"' if " " in name else name
        raise UserError(f"seed: is the random seed, a whole number; to build on the shared seed "
                        f"“{name}”, use motif:{quoted}") from None


def _check_share(out: dict[str, Any]) -> None:
    sources = [k for k in ("clip", "file", "notes") if k in out]
    if len(sources) != 1:
        given = f" (got {' and '.join(sources)})" if sources else ""
        raise UserError(f"/seed share takes the music from one of clip:, file: or notes:{given}")
    if "bars" in out:
        if "clip" not in out:
            raise UserError("bars: picks bars of a clip; use it with clip:")
        out["bars"] = parse_bar_range(out["bars"])
    if "meter" in out:
        if "notes" not in out:
            raise UserError("meter: is for notes:; clips and files bring their own")
        out["meter"] = Meter.parse(out["meter"])
