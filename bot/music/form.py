"""Musical form as plain data: sections of bars (AABA, AAB, AABB, strains), their per-bar
features for the models, inference of sections from a piece's own repetitions, and the
repetition rate used to measure form.

A form is a string of section letters (``"aaba"``); a ``Section`` is ``(start_bar, bars,
letter)``. The models see four small per-bar features (``FORM_FEATURES``), so they learn what
real pieces do at the start, middle and end of a section and when a section comes back:

========== =================================================================================
section    0 = unknown / before the first bar, 1..5 = letters A..E (later letters count as E)
sec_bar    0 = before the first bar, 1..8 = bar index inside the section + 1 (capped at 8)
sec_left   0 = before the first bar, 1..4 = bars left in the section, this one included (cap 4)
repeat     0 = unknown, 1 = first time this letter is heard, 2 = a letter heard before
========== =================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Section = tuple[int, int, str]  # (start bar, length in bars, letter)

FORM_FEATURES = ("section", "sec_bar", "sec_left", "repeat")
FORM_FEATURE_SIZES = (6, 9, 5, 3)
MAX_LETTERS = 5
MAX_FORM_LETTERS = 8  # a member's form: at most 8 sections
UNKNOWN_FORM = (0, 0, 0, 0)


class FormError(ValueError):
    """A form that cannot be laid over the requested bars."""


def parse_form(text: str, max_letters: int = MAX_FORM_LETTERS) -> str:
    """Normalise a member's form: letters a-e, 1-8 of them, starting with A (``"AABA"`` ->
    ``"aaba"``); FormError otherwise. (The styles' own forms may repeat past 8 sections.)"""
    t = text.strip().lower()
    if not re.fullmatch(rf"[a-e]{{1,{max_letters}}}", t):
        raise FormError("a form is 1-8 section letters a-e, such as aaba, aab or aabb")
    if t[0] != "a":
        raise FormError("a form starts with section a, such as aaba, aab or aabb")
    seen = "a"
    for ch in t[1:]:  # letters are introduced in order: abac, never acab
        if ch not in seen:
            if ord(ch) != ord(max(seen)) + 1:
                raise FormError(f"form {t}: new sections come in order a, b, c, ... "
                                f"(try {_canonical(t)})")
            seen += ch
    return t


def _canonical(form: str) -> str:
    mapping: dict[str, str] = {}
    for ch in form:
        mapping.setdefault(ch, "abcde"[len(mapping)])
    return "".join(mapping[ch] for ch in form)


def lay_out(form: str, bars: int) -> tuple[Section, ...]:
    """Equal sections for a form over ``bars`` bars; FormError when they do not divide."""
    form = parse_form(form, max_letters=max(MAX_FORM_LETTERS, bars))
    n = len(form)
    if bars % n:
        raise FormError(f"form {form} needs a number of bars divisible by {n} "
                        f"({n} equal sections), not {bars}")
    size = bars // n
    return tuple((i * size, size, ch.upper()) for i, ch in enumerate(form))


BLUES_CHORUS = 12  # bars in a blues chorus: three 4-bar lines, AAB

# Default forms per style, tried in order: (section length in bars, ((letters, weight), ...)).
# The first entry whose sections divide the requested bars wins, one of its forms drawn by
# weight (a seed fixes the draw), and repeating the letters fills longer clips (a second chorus
# of a blues is AAB again). Sizes follow the styles' real phrase lengths: 8-bar A sections of
# 32-bar standards, the 4-bar lines of a 12-bar blues, 8-bar strains of reels and rags, 4-bar
# phrases of chorales. Where real tunes vary, the weights give the share of each: an 8-bar folk
# tune is often a period of two phrases that open alike (a a') and as often not; 8-bar stretches
# of real tunes repeat a bar 0.13 (folk), 0.18 (celtic), 0.07 (rags) of the time, and a returning
# section always lets the melody bring its phrase back.
STYLE_FORMS: dict[str, tuple[tuple[int, tuple[tuple[str, float], ...]], ...]] = {
    "jazz": ((8, (("aaba", 1.0),)), (4, (("aaba", 1.0),)), (4, (("ab", 1.0),))),
    "blues": ((4, (("aab", 1.0),)), (4, (("ab", 1.0),)), (2, (("aab", 1.0),))),
    "folk": ((8, (("aabb", 1.0),)), (4, (("aabb", 0.6), ("abac", 0.4))),
             (4, (("aa", 0.35), ("ab", 0.65)))),
    "celtic": ((8, (("aabb", 1.0),)), (4, (("aabb", 0.6), ("abab", 0.4))),
               (4, (("aa", 0.45), ("ab", 0.55)))),
    "classical": ((4, (("abac", 1.0),)), (4, (("ab", 1.0),))),
    "ragtime": ((8, (("aabb", 1.0),)), (4, (("aabb", 0.5), ("abac", 0.5))),
                (4, (("aa", 0.25), ("ab", 0.75)))),
}


def default_form(style: str, bars: int, draw: float = 0.0) -> str:
    """The style's usual form for ``bars`` bars, as letters (one letter per section); ``draw``
    (uniform in [0, 1)) picks among the forms the style uses for that length."""
    for size, choices in STYLE_FORMS.get(style, ()):
        span = size * len(choices[0][0])
        if bars % span:
            continue
        total = sum(w for _, w in choices)
        acc = 0.0
        chosen = choices[-1][0]
        for letters, w in choices:
            acc += w / total
            if draw < acc:
                chosen = letters
                break
        return chosen * (bars // span)
    # nothing divides (e.g. 7 bars): one section, the whole clip
    return "a"


def form_for(style: str, bars: int, form: str | None = None) -> tuple[Section, ...]:
    """Sections for a clip: the member's form, or the style's default."""
    return lay_out(form if form else default_form(style, bars), bars)


def bar_features(sections: Sequence[Section], bars: int) -> list[tuple[int, int, int, int]]:
    """Per-bar FORM_FEATURES for ``bars`` bars; bars outside every section are unknown."""
    out = [UNKNOWN_FORM] * bars
    seen: set[str] = set()
    for start, length, letter in sorted(sections):
        idx = min(MAX_LETTERS, ord(letter.upper()) - ord("A") + 1)
        rep = 2 if letter in seen else 1
        seen.add(letter)
        for k in range(length):
            b = start + k
            if 0 <= b < bars:
                out[b] = (idx, min(8, k + 1), min(4, length - k), rep)
    return out


def echo_bars(sections: Sequence[Section], bars: int) -> list[int]:
    """Per bar, how many bars back its echo is: the same bar of the letter's first statement
    (the first A's bar 3 for every later A's bar 3); 0 where there is none (a letter's first
    statement, a bar past the first statement's length, no section). The sequence models read
    the echo's notes as side features, so a section that comes back can bring its phrase
    back, varied or not (``cadenza.models.grammar``). The first statement, not the latest: in
    AABA the second A may end differently, and the last A restates the first (as the models'
    form choruses do, ``cadenza.models.training.form_choruses``)."""
    out = [0] * bars
    first: dict[str, Section] = {}
    for sec in sorted(sections):
        start, length, letter = sec
        prev = first.get(letter)
        if prev is None:
            first[letter] = sec
            continue
        for k in range(min(length, prev[1])):
            if 0 <= start + k < bars:
                out[start + k] = start - prev[0]
    return out


def section_letters(sections: Sequence[Section], bars: int) -> str:
    """One letter per bar ('.' where no section covers it), for display and tests."""
    out = ["."] * bars
    for start, length, letter in sections:
        for b in range(start, min(bars, start + length)):
            out[b] = letter
    return "".join(out)


# ---------------------------------------------------------------- sections from repetition


def _similarity(a: Sequence[frozenset], b: Sequence[frozenset]) -> float:
    """Mean per-bar Jaccard similarity of two equally long phrases (empty bars match empty)."""
    total = 0.0
    for x, y in zip(a, b, strict=True):
        if not x and not y:
            total += 1.0
        else:
            total += len(x & y) / len(x | y)
    return total / max(1, len(a))


def _restatements(bar_content: Sequence[frozenset], threshold: float,
                  sizes: Sequence[int]) -> tuple[int, list[int]]:
    """The phrase length that shows a piece's form (the first of ``sizes`` at which some
    phrase comes back, else the last that fits; the whole piece when none fits) and, per
    phrase of it, the earlier phrase it restates: the most alike one, when the mean per-bar
    Jaccard similarity of ``bar_content`` reaches ``threshold``; -1 for none."""
    bars = len(bar_content)
    best: tuple[int, list[int]] = (bars, [-1] if bars else [])
    for size in sizes:
        if bars < 2 * size:
            continue
        phrases = [list(bar_content[s:s + size]) for s in range(0, bars - size + 1, size)]
        match: list[int] = []
        for i, ph in enumerate(phrases):
            top = max(((_similarity(ph, phrases[j]), j) for j in range(i)), default=(0.0, -1))
            match.append(top[1] if top[0] >= threshold else -1)
        if any(j >= 0 for j in match):  # something came back: this size shows the form
            return size, match
        best = (size, match)
    return best


# a phrase restates an earlier one at this mean per-bar Jaccard similarity; phrase lengths
# tried, longest first
RESTATE_THRESHOLD = 0.5
PHRASE_SIZES = (8, 4)


def infer_sections(bar_content: Sequence[frozenset], *, threshold: float = RESTATE_THRESHOLD,
                   sizes: Sequence[int] = PHRASE_SIZES) -> tuple[Section, ...]:
    """Sections of a piece from its own repetitions: phrases of 8 bars when some 8-bar phrase
    comes back, else of 4; a phrase that resembles an earlier one (mean per-bar Jaccard
    similarity of ``bar_content`` >= threshold) takes its letter, others the next letter
    (letters after E count as E, as the models' section feature does).
    ``bar_content`` holds one hashable-item set per bar (melody onsets, chord changes)."""
    return _lettered(*_restatements(bar_content, threshold, sizes), len(bar_content))


def _lettered(size: int, match: list[int], bars: int) -> tuple[Section, ...]:
    """``infer_sections`` from ``_restatements``' phrase size and matches."""
    letters: list[int] = []  # 0 = A
    for j in match:
        letters.append(letters[j] if j >= 0 else max(letters, default=-1) + 1)
    sections = [(i * size, size, chr(ord("A") + min(ch, 4))) for i, ch in enumerate(letters)]
    tail = bars - len(match) * size
    if tail:  # a leftover shorter than a phrase: a section of its own (a tag, a coda)
        sections.append((len(match) * size, tail,
                         chr(ord("A") + min(4, max(letters, default=-1) + 1))))
    return tuple(sections)


def echo_from_repeats(bar_content: Sequence[frozenset], *,
                      threshold: float = RESTATE_THRESHOLD,
                      sizes: Sequence[int] = PHRASE_SIZES) -> list[int]:
    """``echo_bars`` for a real piece: per bar, how many bars back the same bar of the phrase
    it restates is (``infer_sections``' phrases; 0 where the phrase restates none). Not the
    echo of ``infer_sections``' letters: past E every new phrase is E, and E would echo an
    unrelated E; and a phrase restates the earlier phrase most like it, not the latest of
    its letter."""
    return _echoes(*_restatements(bar_content, threshold, sizes), len(bar_content))


def _echoes(size: int, match: list[int], bars: int) -> list[int]:
    """``echo_from_repeats`` from ``_restatements``' phrase size and matches."""
    out = [0] * bars
    for i, j in enumerate(match):
        if j >= 0:
            out[i * size:(i + 1) * size] = [(i - j) * size] * size
    return out


def melody_form(notes: Sequence[tuple[int, int, int]], bar_ticks: int, bars: int,
                sections: Sequence[Section] = ()
                ) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """A line's form as the sequence models read it: per-bar form rows of ``sections`` (when
    its source marks none, as a clip or an upload does, of ``infer_sections``) and the echoes
    of ``echo_from_repeats``, for (start, duration, pitch) ``notes``; the line's phrases are
    compared once for both."""
    onsets = bar_onsets(notes, bar_ticks, bars)
    size, match = _restatements(onsets, RESTATE_THRESHOLD, PHRASE_SIZES)
    return (bar_features(sections or _lettered(size, match, bars), bars),
            _echoes(size, match, bars))


# ---------------------------------------------------------------- measuring form


def bar_onsets(notes: Sequence[tuple[int, int, int]], bar_ticks: int, bars: int
               ) -> list[frozenset]:
    """Per bar, the set of (position in bar, pitch) onsets of (start, duration, pitch) notes."""
    out: list[set] = [set() for _ in range(bars)]
    for start, _dur, pitch in notes:
        b, pos = divmod(start, bar_ticks)
        if 0 <= b < bars:
            out[b].add((pos, pitch))
    return [frozenset(s) for s in out]


def repetition_rate(notes: Sequence[tuple[int, int, int]], bar_ticks: int, bars: int) -> float:
    """Share of the non-empty bars after the first that repeat an earlier bar exactly (same
    onsets at the same positions and pitches); NaN when fewer than two bars have notes."""
    content = bar_onsets(notes, bar_ticks, bars)
    seen: set[frozenset] = set()
    counted = repeats = 0
    for c in content:
        if not c:
            continue
        if seen:
            counted += 1
            repeats += c in seen
        seen.add(c)
    return repeats / counted if counted else float("nan")
