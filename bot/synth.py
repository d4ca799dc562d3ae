"""MIDI to stereo float audio with FluidSynth: soundfonts loaded once, a fresh synth per clip."""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.errors import ResourceError
from cadenza.music.midi_io import DRUM_CHANNEL, open_own_midi

log = logging.getLogger(__name__)

ENV_SOUNDFONT = "CADENZA_SOUNDFONT"
DEBIAN_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PRETTY_MIDI_SOUNDFONT = "TimGM6mb.sf2"

DEFAULT_SAMPLE_RATE = 44100
MAX_TAIL_SECONDS = 2.5  # release/reverb tail cap after the last event
_TAIL_BLOCK_SECONDS = 0.05
# The tail ends once a block is this far below the clip's peak (or below an absolute floor):
# normalisation puts the peak at or under -1 dBFS, so what is left sits below the -60 dBFS
# that trim_trailing_silence cuts anyway.
_TAIL_RELATIVE_DB = -60.0
_TAIL_FLOOR = 10 ** (-96 / 20)
# Output gain: a dense 4-part GM mix peaks around 0.2-0.3 at this setting. We render to float,
# so nothing clips here either way, and audio.normalize sets the final level.
SYNTH_GAIN = 0.3
_BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE): events land on block starts
_INTERP_LINEAR = 1  # FLUID_INTERP_LINEAR, for the drum channel (see Synth._open)


def _pretty_midi_soundfont() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PRETTY_MIDI_SOUNDFONT
        if path.is_file():
            return path
    return None


def _check_soundfont(path: Path) -> Path:
    """Existence and a RIFF 'sfbk' header: SF2 and SF3 share it, anything else fails to load."""
    if not path.is_file():
        raise ResourceError(f"soundfont not found: {path}")
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError as e:
        raise ResourceError(f"cannot read soundfont {path}: {e.strerror}") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ResourceError(f"not a SoundFont (.sf2/.sf3) file: {path}")
    return path


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """Pick the soundfont: explicit path, $CADENZA_SOUNDFONT, Debian's FluidR3, pretty_midi's.

    An explicit or environment path that is missing or invalid is an error rather than a silent
    fallback: someone asked for that sound.
    """
    if explicit is not None and str(explicit) != "":
        return _check_soundfont(Path(explicit).expanduser())
    env = os.environ.get(ENV_SOUNDFONT, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ResourceError(f"soundfont not found: {path} (set by {ENV_SOUNDFONT})")
        return _check_soundfont(path)
    if DEBIAN_SOUNDFONT.is_file():
        return _check_soundfont(DEBIAN_SOUNDFONT)
    bundled = _pretty_midi_soundfont()
    if bundled is not None:
        return _check_soundfont(bundled)
    raise ResourceError(
        "no soundfont found: apt install fluid-soundfont-gm, or pass --soundfont / set "
        f"{ENV_SOUNDFONT} to an .sf2 file"
    )


def _load_fluidsynth() -> Any:
    # pyfluidsynth prints where it found the library to stdout whenever CI is set in the
    # environment; our stdout carries clip ids and console replies, so catch it and log it.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            import fluidsynth
    except (ImportError, OSError):
        raise ResourceError("FluidSynth is not installed: apt install libfluidsynth3") from None
    finally:
        if captured.getvalue().strip():
            log.debug("pyfluidsynth: %s", captured.getvalue().strip())
    return fluidsynth


class _Api:
    """The few libfluidsynth entry points we call, bound once (pyfluidsynth lacks some)."""

    def __init__(self, fl: Any) -> None:
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        self.new_synth = fl.new_fluid_synth
        self.delete_synth = fl.delete_fluid_synth
        self.noteon = fl.fluid_synth_noteon
        self.noteoff = fl.fluid_synth_noteoff
        self.cc = fl.fluid_synth_cc
        self.pitch_bend = fl.fluid_synth_pitch_bend
        self.program_select = fl.fluid_synth_program_select
        self.unset_program = fl.fluid_synth_unset_program
        self.all_notes_off = fl.fluid_synth_all_notes_off
        self.set_interp = fl.cfunc("fluid_synth_set_interp_method", c_int,
                                   ("synth", c_void_p, 1), ("chan", c_int, 1),
                                   ("method", c_int, 1))
        self.system_reset = fl.fluid_synth_system_reset
        self.get_sfont_by_id = fl.fluid_synth_get_sfont_by_id
        self.add_sfont = fl.cfunc("fluid_synth_add_sfont", c_int,
                                  ("synth", c_void_p, 1), ("sfont", c_void_p, 1))
        self.remove_sfont = fl.cfunc("fluid_synth_remove_sfont", c_int,
                                     ("synth", c_void_p, 1), ("sfont", c_void_p, 1))
        # Float output: no int16 clipping or dither before our own normalisation.
        self.write_float = fl.cfunc(
            "fluid_synth_write_float", c_int,
            ("synth", c_void_p, 1), ("len", c_int, 1),
            ("lout", c_void_p, 1), ("loff", c_int, 1), ("lincr", c_int, 1),
            ("rout", c_void_p, 1), ("roff", c_int, 1), ("rincr", c_int, 1),
        )
        missing = [k for k, v in vars(self).items() if v is None]
        if missing:
            raise ResourceError(f"libfluidsynth is too old (missing {', '.join(missing)}): "
                                "install FluidSynth 2.x")


class Synth:
    """Turns MIDI bytes into stereo float32 audio with one loaded soundfont.

    The soundfont is loaded once (into an idle "owner" synth that keeps it alive). Each clip is
    rendered by a brand-new synth that borrows it: creating one costs well under a millisecond,
    and unlike system_reset it leaves nothing behind (voice DSP state and the reverb's filters
    survive a reset and colour the next clip), so the same MIDI always renders to the same
    samples. Renders are serialised by a lock: the shared soundfont's sample reference counts
    are not meant for concurrent synths, and the bot's pool has few threads anyway.
    """

    def __init__(self, soundfont: Path, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 cores: int = 1) -> None:
        fl = _load_fluidsynth()
        self._api = _Api(fl)
        self.soundfont = soundfont
        self.sample_rate = sample_rate
        self.cores = cores
        self._lock = threading.Lock()
        # One MIDI port; chorus off because no part sends CC93 and it costs CPU; a slightly
        # larger room than the default so the arranger's CC91 sends are audible. cpu-cores > 1
        # renders voices on that many threads: the same samples, to the bit (tested), in
        # ~60 % of the time on 2 cores; only worth it when the other cores are idle. Those
        # threads would ask for real-time priority (and warn where they cannot have it): an
        # offline render must not starve the event loop, so they run at normal priority.
        settings = {"synth.chorus.active": 0, "synth.reverb.room-size": 0.5,
                    "synth.reverb.damp": 0.3, "synth.reverb.width": 0.8,
                    "synth.polyphony": 256, "synth.cpu-cores": cores,
                    "audio.realtime-prio": 0}
        self._owner: Any = fl.Synth(gain=SYNTH_GAIN, samplerate=float(sample_rate),
                                    channels=16, **settings)
        sfid = self._owner.sfload(str(soundfont))
        self._sfont = self._api.get_sfont_by_id(self._owner.synth, sfid) if sfid >= 0 else None
        if not self._sfont:
            self._owner.delete()
            self._owner = None
            raise ResourceError(f"FluidSynth could not load the soundfont: {soundfont}")
        log.info("loaded soundfont %s at %d Hz", soundfont, sample_rate)

    def close(self) -> None:
        """Free the soundfont; the renderer cannot be used afterwards."""
        with self._lock:
            if self._owner is not None:
                self._owner.delete()
                self._owner = None

    def _open(self) -> tuple[Any, int]:
        api = self._api
        synth = api.new_synth(self._owner.settings)
        if not synth:
            raise ResourceError("FluidSynth could not create a synthesizer")
        sfid = api.add_sfont(synth, self._sfont)
        if sfid < 0:
            api.delete_synth(synth)
            raise ResourceError(f"FluidSynth could not use the soundfont: {self.soundfont}")
        for ch in range(16):
            api.program_select(synth, ch, sfid, 128 if ch == DRUM_CHANNEL else 0, 0)
        # The kit costs as much as the other three parts together (a ride cymbal rings for
        # seconds under every hit: 595 of 884 ms for 32 bars of jazz on one core). Linear
        # rather than 4th-order interpolation there: its samples mostly play at their own pitch,
        # where both read the stored samples, so that mix moves by -84 dB (rms, relative) and
        # renders in 12-15 % less time. (Cheaper still, none: -67 dB, 18 %.)
        api.set_interp(synth, DRUM_CHANNEL, _INTERP_LINEAR)
        return synth, sfid

    def _close(self, synth: Any) -> None:
        api = self._api
        api.system_reset(synth)
        scratch = np.empty((_BLOCK, 2), dtype=np.float32)
        self._write(synth, scratch, 0, _BLOCK)  # the mixer lets go of voices and samples
        for ch in range(16):
            api.unset_program(synth, ch)  # else removing the font warns once per channel
        api.remove_sfont(synth, self._sfont)  # detach: deleting the synth must not free it
        api.delete_synth(synth)

    def _write(self, synth: Any, out: np.ndarray, start: int, frames: int) -> None:
        if frames > 0:
            ptr = out.ctypes.data + start * 8  # 2 interleaved float32 per frame
            self._api.write_float(synth, frames, ptr, 0, 2, ptr, 1, 2)

    def _program(self, synth: Any, sfid: int, channel: int, program: int) -> None:
        select = self._api.program_select
        bank = 128 if channel == DRUM_CHANNEL else 0  # GM kits live in bank 128
        if select(synth, channel, sfid, bank, program) != 0:
            select(synth, channel, sfid, bank, 0)  # a font without that patch or kit

    def synthesize(self, data: bytes) -> np.ndarray:
        """Render MIDI bytes to float32 audio of shape (frames, 2), release tail included.

        The body lasts until the file's last event (our files end the conductor track on the
        final bar line); then notes still held are released and the tail is rendered until it
        is 60 dB below the clip's peak, for at most MAX_TAIL_SECONDS.
        """
        events, end_seconds = _timed_events(data)
        sr = self.sample_rate
        body = round(end_seconds * sr)
        tail_block = max(1, round(_TAIL_BLOCK_SECONDS * sr))
        tail_cap = round(MAX_TAIL_SECONDS * sr)
        out = np.zeros((body + tail_cap, 2), dtype=np.float32)
        api = self._api
        with self._lock:
            if self._owner is None:
                raise ResourceError("the renderer was closed")
            synth, sfid = self._open()
            try:
                pos = 0
                for seconds, msg in events:
                    frame = min(round(seconds * sr), body)
                    self._write(synth, out, pos, frame - pos)
                    pos = max(pos, frame)
                    kind = msg.type
                    if kind == "note_on" and msg.velocity:
                        api.noteon(synth, msg.channel, msg.note, msg.velocity)
                    elif kind in ("note_off", "note_on"):
                        api.noteoff(synth, msg.channel, msg.note)
                    elif kind == "program_change":
                        self._program(synth, sfid, msg.channel, msg.program)
                    elif kind == "control_change":
                        api.cc(synth, msg.channel, msg.control, msg.value)
                    elif kind == "pitchwheel":
                        api.pitch_bend(synth, msg.channel, msg.pitch + 8192)
                self._write(synth, out, pos, body - pos)
                for ch in range(16):
                    api.cc(synth, ch, 64, 0)  # sustain pedal up, or held notes never end
                    api.all_notes_off(synth, ch)
                peak = max(float(out[:body].max()), -float(out[:body].min())) if body else 0.0
                quiet = max(_TAIL_FLOOR, peak * 10 ** (_TAIL_RELATIVE_DB / 20))
                end = body
                while end < body + tail_cap:
                    n = min(tail_block, body + tail_cap - end)
                    self._write(synth, out, end, n)
                    end += n
                    if float(np.abs(out[end - n:end]).max()) < quiet:
                        break
            finally:
                self._close(synth)
        return out[:end]


def _timed_events(data: bytes) -> tuple[list[tuple[float, Any]], float]:
    """Channel messages with absolute times in seconds (tempo map applied) and the end time."""
    mid = open_own_midi(data)
    tpb = mid.ticks_per_beat
    merged: list[tuple[int, int, Any]] = []
    seq = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            merged.append((tick, seq, msg))
            seq += 1
    # Track order breaks ties, as in a type-1 player: tempo (track 0) before notes on one tick.
    merged.sort(key=lambda e: (e[0], e[1]))
    events = []
    tempo = 500_000
    last_tick, seconds = 0, 0.0
    for tick, _, msg in merged:
        seconds += (tick - last_tick) * tempo / (tpb * 1_000_000)
        last_tick = tick
        if msg.type == "set_tempo":
            tempo = msg.tempo
        elif not msg.is_meta and msg.type != "sysex":
            events.append((seconds, msg))
    return events, seconds


_renderers: dict[tuple[Path, int, int], Synth] = {}
_renderers_lock = threading.Lock()


def get_synth(soundfont: Path | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 cores: int = 1) -> Synth:
    """The process-wide Synth for a soundfont (found with find_soundfont when None)
    rendering on ``cores`` threads."""
    path = find_soundfont(soundfont).resolve()
    key = (path, sample_rate, cores)
    with _renderers_lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _renderers[key] = Synth(path, sample_rate, cores)
        return renderer


def synthesize(data: bytes, soundfont: Path | None = None,
                sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Convenience: render with the shared Synth for ``soundfont``."""
    return get_synth(soundfont, sample_rate).synthesize(data)
