"""Token encode/decode: exact round trips on literal scores, canonical forms, grammar errors."""

from __future__ import annotations

import pytest

from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord, Key
from cadenza.music.tokens import BAR, BOS, EOS, TokenError, Vocab, decode, encode

V = Vocab()


def lead(*notes: Note) -> tuple[Track, ...]:
    return (Track("Lead", role="lead", notes=notes),)


def test_literal_two_bar_example_encodes_to_the_documented_stream() -> None:
    s = Score(
        tracks=lead(Note(0, 12, 60, 88), Note(12, 6, 62, 88), Note(18, 6, 64, 40),
                    Note(48, 48, 67, 88)),
        chords=(ChordEvent(0, 24, Chord(0, "maj")), ChordEvent(24, 72, Chord(7, "7"))),
        bars=2, style="jazz",
    )
    toks = encode(s, V)
    assert V.to_strings(toks) == [
        "BOS", "STYLE_jazz", "METER_4/4",
        "BAR", "CHORD_0:maj", "POS_0", "VEL_5", "PITCH_60", "DUR_12", "POS_12", "PITCH_62",
        "DUR_6", "POS_18", "VEL_2", "PITCH_64", "DUR_6", "POS_24", "CHORD_7:7",
        "BAR", "CHORD_7:7", "POS_0", "VEL_5", "PITCH_67", "DUR_48", "EOS",
    ]
    assert decode(toks, V) == s


@pytest.mark.parametrize("meter", [(2, 4), (3, 4), (4, 4), (6, 8), (9, 8), (12, 8)])
def test_round_trip_in_every_meter(meter: tuple[int, int]) -> None:
    bar = 48 * meter[0] // meter[1]
    s = Score(
        tracks=lead(Note(0, 6, 72, 120), Note(bar - 3, 3, 71, 120), Note(bar, 2, 69, 56),
                    Note(bar + 6, 4, 74, 56), Note(2 * bar + 1, 96, 21, 8)),
        chords=(ChordEvent(0, bar, Chord(9, "min")), ChordEvent(bar, bar // 2 * 1, Chord(2, "m7")),
                ChordEvent(bar + bar // 2, bar * 2 - bar // 2, Chord(7, "7"))),
        time_signature=meter, bars=3, style="folk", key=Key(9, "minor"),
    )
    assert decode(encode(s, V), V, key=Key(9, "minor")) == s


def test_chords_of_several_notes_at_one_position_ascend_and_round_trip() -> None:
    s = Score(tracks=lead(Note(0, 12, 64, 88), Note(0, 12, 60, 88), Note(0, 24, 67, 88)),
              chords=(ChordEvent(0, 48, Chord(0, "maj7")),), bars=1, style="classical")
    toks = V.to_strings(encode(s, V))
    assert toks[5:13] == ["POS_0", "VEL_5", "PITCH_60", "DUR_12", "PITCH_64", "DUR_12",
                          "PITCH_67", "DUR_24"]
    assert decode(encode(s, V), V) == s


def test_empty_bars_and_no_chord_round_trip() -> None:
    s = Score(tracks=lead(Note(96, 12, 60, 88)), chords=(ChordEvent(48, 96, Chord(5, "maj")),),
              bars=3, style="celtic")
    toks = V.to_strings(encode(s, V))
    assert toks[3:5] == ["BAR", "CHORD_NC"]
    assert decode(encode(s, V), V) == s


def test_encoding_is_canonical_for_off_grid_values() -> None:
    """Non-canonical input is normalised: durations snap, velocities bucket, pitches fold,
    repeated chords merge, duplicate onsets keep the longest."""
    s = Score(tracks=lead(Note(0, 13, 130 - 12, 100), Note(0, 7, 118, 1), Note(12, 7, 10, 99)),
              chords=(ChordEvent(0, 24, Chord(0, "9")), ChordEvent(24, 24, Chord(0, "7"))),
              bars=1, style="jazz")
    out = decode(encode(s, V), V)
    assert [(n.start, n.duration, n.pitch, n.velocity) for n in out.tracks[0].notes] == [
        (0, 12, 106, 104), (12, 6, 22, 104)]
    assert out.chords == (ChordEvent(0, 48, Chord(0, "7")),)


def test_grammar_errors_are_reported_with_the_token() -> None:
    with pytest.raises(TokenError, match="DUR without a PITCH"):
        decode([BOS, V.style("jazz"), V.meter((4, 4)), BAR, V.chord(None), V.pos(0),
                V.dur(12), EOS], V)
    with pytest.raises(TokenError, match="out of order"):
        decode([BOS, V.style("jazz"), V.meter((4, 4)), BAR, V.chord(None), V.pos(12),
                V.pos(6), EOS], V)
    with pytest.raises(TokenError, match="before the first BAR"):
        decode([BOS, V.style("jazz"), V.meter((4, 4)), V.pos(0), EOS], V)
    # lenient decoding skips what it cannot use
    out = decode([BOS, V.style("jazz"), V.meter((4, 4)), BAR, V.chord(None), V.pos(12),
                  V.pos(6), V.vel(5), V.pitch(60), V.dur(12), EOS], V, strict=False)
    assert [n.start for n in out.tracks[0].notes] == [12]


def test_vocabulary_layout_is_contiguous_and_named() -> None:
    assert V.names[:4] == ("PAD", "BOS", "EOS", "BAR")
    assert len(set(V.names)) == len(V)
    for kind, first in (("style", "STYLE_classical"), ("meter", "METER_2/4"), ("pos", "POS_0"),
                        ("chord", "CHORD_NC"), ("vel", "VEL_0"), ("pitch", "PITCH_21"),
                        ("dur", "DUR_1")):
        tok = V.names.index(first)
        assert V.kind(tok) == kind and V.value(tok) == 0
    with pytest.raises(TokenError):
        V.style("polka")


def test_a_bar_equal_to_an_earlier_one_is_written_as_rep_and_decodes_back() -> None:
    riff = (Note(0, 12, 60, 88), Note(12, 12, 63, 88), Note(24, 24, 65, 104))
    other = (Note(0, 48, 70, 88),)

    def at(bar: int, notes: tuple[Note, ...]) -> tuple[Note, ...]:
        return tuple(Note(n.start + 48 * bar, n.duration, n.pitch, n.velocity) for n in notes)

    s = Score(tracks=lead(*at(0, riff), *at(1, other), *at(2, riff), *at(3, riff)),
              chords=(ChordEvent(0, 96, Chord(0, "maj")), ChordEvent(96, 72, Chord(5, "maj")),
                      ChordEvent(168, 24, Chord(7, "7"))),
              bars=4, style="folk")
    names = V.to_strings(encode(s, V))
    bars = " ".join(names).split("BAR ")[1:]
    assert bars[2].split() == ["CHORD_5:maj", "REP_2"]  # the nearest earlier equal bar
    # a repeated bar still carries its own mid-bar chord change, then nothing else
    assert bars[3].split() == ["CHORD_5:maj", "REP_1", "POS_24", "CHORD_7:7", "EOS"]
    assert decode(encode(s, V), V) == s
    # without repeats the same score is written out note by note, and decodes the same
    plain = encode(s, V, repeats=False)
    assert not any(V.kind(t) == "rep" for t in plain)
    assert decode(plain, V) == s


def test_rep_that_reaches_before_the_piece_or_has_notes_after_it_is_a_grammar_error() -> None:
    toks = V.from_strings(["BOS", "STYLE_folk", "METER_4/4", "BAR", "CHORD_NC", "REP_1", "EOS"])
    with pytest.raises(TokenError, match="REP_1 must open a bar"):
        decode(toks, V)
    toks = V.from_strings(["BOS", "STYLE_folk", "METER_4/4", "BAR", "CHORD_NC", "POS_0",
                           "VEL_5", "PITCH_60", "DUR_12", "BAR", "CHORD_NC", "REP_1", "POS_12",
                           "PITCH_62", "DUR_12", "EOS"])
    with pytest.raises(TokenError, match="repeats another"):
        decode(toks, V)
    # lenient decoding skips the stray notes and keeps the repeat
    out = decode(toks, V, strict=False)
    assert [n.start for n in out.tracks[0].notes] == [0, 48]
