"""Style definitions: tempo range, meter, feel, instrumentation and melodic idiom per style.

Style lives in four places: the model's style conditioning (every style is learned from real
music of that style), the chord plan (the chord model for jazz, blues and ragtime, else
``cadenza.harmony``), the arrangement and drums (``cadenza.arrange``, ``cadenza.drums``), and a
light pitch bias on the sampler (blue notes, chord tones) defined here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cadenza.music.score import Meter
from cadenza.music.theory import Key

# Sampling defaults, chosen with the lead-only style classifier (rnn, 48 clips a style, CV;
# the later choices on seeds the report does not use; docs/style-classifier.md), every style's
# repetition rate still within the real tunes' mean +- 1 sd: temperature 1.0 everywhere, no
# guidance 0.81; 0.7 0.87; with the blues bias below and the guidance, 0.91-0.93; with jazz
# and ragtime back at 1.0, 0.93-0.96. Below 1 the model keeps to its likelier, more
# idiomatic continuations; jazz and ragtime lines need their tail (chromatic approach notes,
# syncopations): at 0.7 the lstm's jazz drifted from the solos (lead overlap 0.84 -> 0.75).
# A member's temperature option overrides the style's.
DEFAULT_TEMPERATURE = 0.7
# Style guidance where the styles blur (folk between celtic and classical): it doubles the
# rows of each sampling step (a twin per clip), and jazz, blues and ragtime gained nothing
# from it (blues from jazz comes from the blue notes), so they sample without.
STYLE_GUIDANCE = 0.5


@dataclass(frozen=True)
class StyleSpec:
    name: str
    description: str
    tempo_range: tuple[int, int]
    meters: tuple[tuple[Meter, float], ...]  # (meter, weight)
    swing: bool  # 8th notes played long-short (2:1)
    keys: tuple[str, ...]  # keys picked when the user gives none
    programs: dict[str, int]  # GM programs (0-based) for lead, chords, bass
    lead_range: tuple[int, int]
    # sampler idiom: logit bonus for pitch classes relative to the key tonic and chord tones
    tonic_bias: dict[int, float]
    chord_tone_bias: float
    off_scale_penalty: float
    instrument_names: dict[str, str]
    # style guidance for the sequence models (cadenza.models.sample): how far each step is
    # pushed from the average style towards this one; 0 samples the model as it is
    style_guidance: float = 0.0
    # form guidance (cadenza.models.sample): the model's pull toward a returning section's
    # first statement, amplified, for styles whose models bring a phrase back too seldom (jazz
    # and blues solos seldom restate one; the rags' strains, learned also written out, came
    # back whole less often); a style with style guidance samples with that instead
    form_guidance: float = 0.0
    temperature: float = DEFAULT_TEMPERATURE  # when the member gives none

    @property
    def default_meter(self) -> Meter:
        return self.meters[0][0]


STYLES: dict[str, StyleSpec] = {
    "jazz": StyleSpec(
        name="jazz",
        description="swing: ii-V-I changes with extended chords, walking bass, ride cymbal",
        tempo_range=(110, 180),
        meters=((Meter(4, 4), 1.0),),
        swing=True,
        keys=("F", "Bb", "Eb", "C", "G", "Dm", "Cm", "Gm"),
        programs={"lead": 65, "chords": 0, "bass": 32},
        lead_range=(56, 84),
        # the models learned jazz lines from real solos: only a light pull to chord tones,
        # and no penalty for the chromatic approach notes the solos are full of
        tonic_bias={},
        chord_tone_bias=0.3,
        off_scale_penalty=0.0,
        instrument_names={"lead": "Alto Sax", "chords": "Piano", "bass": "Upright Bass",
                          "drums": "Jazz Kit"},
        temperature=1.0,
        # form choruses taught the returning A; trained on them written out too
        # (spelled returns), the models bring it back less often by REP_k: a push toward the
        # echo keeps the head's return (lstm 0.64 of the first A's notes at 1.0, 0.77 at 1.5,
        # 0.95 at 3.0, nearly all bar-for-bar copies; gru 0.62 / 0.78, rnn 0.33 / 0.56)
        form_guidance=1.5,
    ),
    "blues": StyleSpec(
        name="blues",
        description="12-bar shuffle: dominant sevenths, blue notes, boogie bass, backbeat",
        tempo_range=(76, 126),
        meters=((Meter(4, 4), 1.0),),
        swing=True,
        keys=("E", "A", "G", "C", "Bb", "F", "D"),
        programs={"lead": 26, "chords": 16, "bass": 33},
        lead_range=(55, 84),
        # real blues solos taught the blue notes (b3, b5, b7); a firmer nudge than the old
        # {b3: 0.4, b7: 0.3} is what tells a blues line from a jazz one (the solos of both
        # are by the same players): jazz<->blues confusions 14 -> 7 of 96 clips
        tonic_bias={3: 0.9, 10: 0.6, 6: 0.3},
        chord_tone_bias=0.3,
        off_scale_penalty=0.0,
        # the second line restates the first (over IV): 0.47 of its notes learned, 0.69 so
        # at 1.0; with spelled returns the lstm kept 0.76 at 1.0, 0.79 at 1.5, the gru 0.46
        # and 0.52, the rnn 0.45 and 0.70
        form_guidance=1.5,
        instrument_names={"lead": "Jazz Guitar", "chords": "Organ", "bass": "Electric Bass",
                          "drums": "Shuffle Kit"},
    ),
    "folk": StyleSpec(
        name="folk",
        description="song melodies over I-IV-V: strummed guitar, root-fifth bass, tambourine",
        tempo_range=(84, 126),
        meters=((Meter(4, 4), 0.45), (Meter(3, 4), 0.35), (Meter(2, 4), 0.1), (Meter(6, 8), 0.1)),
        swing=False,
        keys=("G", "D", "C", "A", "F", "Em", "Am"),
        programs={"lead": 73, "chords": 25, "bass": 32},
        lead_range=(60, 88),
        tonic_bias={},
        chord_tone_bias=0.2,
        off_scale_penalty=0.8,
        instrument_names={"lead": "Flute", "chords": "Steel Guitar", "bass": "Acoustic Bass",
                          "drums": "Tambourine"},
        style_guidance=STYLE_GUIDANCE,
    ),
    "celtic": StyleSpec(
        name="celtic",
        description="reels and jigs: fiddle over guitar drones and a bodhran",
        tempo_range=(100, 150),
        meters=((Meter(6, 8), 0.5), (Meter(4, 4), 0.4), (Meter(9, 8), 0.1)),
        swing=False,
        keys=("D", "G", "A", "Em", "Am", "Bm"),
        programs={"lead": 40, "chords": 25, "bass": 32},
        lead_range=(55, 88),
        tonic_bias={},
        chord_tone_bias=0.2,
        off_scale_penalty=0.8,
        instrument_names={"lead": "Fiddle", "chords": "Guitar", "bass": "Acoustic Bass",
                          "drums": "Bodhran"},
        style_guidance=STYLE_GUIDANCE,
    ),
    "classical": StyleSpec(
        name="classical",
        description="chorale: functional harmony, four voices, cadences every phrase",
        tempo_range=(60, 88),
        meters=((Meter(4, 4), 0.8), (Meter(3, 4), 0.2)),
        swing=False,
        keys=("G", "D", "A", "F", "C", "Bb", "Am", "Em", "Dm", "Bm"),
        programs={"lead": 52, "chords": 48, "bass": 42},
        lead_range=(60, 81),
        tonic_bias={},
        chord_tone_bias=0.3,
        off_scale_penalty=1.0,
        instrument_names={"lead": "Choir", "chords": "Strings", "bass": "Cello",
                          "drums": "Concert Bass Drum"},
        style_guidance=STYLE_GUIDANCE,
    ),
    "ragtime": StyleSpec(
        name="ragtime",
        description="stride piano: oom-pah left hand, syncopated right hand, secondary dominants",
        tempo_range=(84, 108),
        # as the rags the models learned: 15 of the 17 Mutopia rags and the Maple Leaf Rag are
        # in 2/4, Alexander's Ragtime Band and one Mutopia rag in 4/4 (and one in 3/4)
        meters=((Meter(2, 4), 0.9), (Meter(4, 4), 0.1)),
        swing=False,
        keys=("C", "F", "G", "Bb", "Eb", "Ab"),
        programs={"lead": 0, "chords": 0, "bass": 0},
        lead_range=(60, 91),
        tonic_bias={},
        chord_tone_bias=0.3,
        off_scale_penalty=0.4,
        instrument_names={"lead": "Piano RH", "chords": "Piano LH chords", "bass": "Piano LH bass",
                          "drums": "Snare & Bass Drum"},
        temperature=1.0,
        # a strain comes back: with spelled returns and no push the lstm's repeated strain
        # kept 0.36 of its first statement's notes, 0.57 at 1.0 (gru 0.72, rnn 0.52); 2.0 gave
        # 0.81, but 8-bar rags repeated whole bars 4-6 times as often as the real ones
        # (repetition rate lstm 0.067, gru 0.101 against 0.018 ± 0.047; at 1.0 0.054, 0.071)
        form_guidance=1.0,
    ),
}

STYLE_NAMES: tuple[str, ...] = tuple(STYLES)


def style_spec(name: str) -> StyleSpec:
    return STYLES[name]


def pick_key(spec: StyleSpec, rng_value: float) -> Key:
    """A style-typical key from a uniform draw in [0, 1)."""
    return Key.parse(spec.keys[int(rng_value * len(spec.keys)) % len(spec.keys)])


def pick_meter(spec: StyleSpec, rng_value: float) -> Meter:
    total = sum(w for _, w in spec.meters)
    acc = 0.0
    for meter, w in spec.meters:
        acc += w / total
        if rng_value < acc:
            return meter
    return spec.meters[-1][0]
