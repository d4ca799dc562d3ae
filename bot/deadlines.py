"""How long each blocking stage may run before it is stopped, and the error that says it was.

Every stage that can block (writing the melody, rendering, encoding, drawing the piano roll,
reading an upload, waiting for the database, shutting down) has a deadline: generous by default,
set by ``CADENZA_DEADLINE_<STAGE>`` in seconds. Past it the work is cancelled (generation
threads stop at their next sampling step) or killed (render processes), the member is told, and
the next job runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from cadenza.errors import CadenzaError, UserError, shown

ENV_PREFIX = "CADENZA_DEADLINE_"
# Store waits answer a member, who must hear back within Discord's 3 s (deferring included).
MAX_STORE_WAIT = 2.5
# What a member reads when a stage overran, as "<label> took longer than N s".
LABELS = {
    "generate": "writing the melody and arrangement",
    "render": "rendering the audio",
    "encode": "encoding the MP3",
    "pianoroll": "drawing the piano roll",
    "upload": "reading the music",
    "store": "waiting for the database",
    "other": "working out the answer",
    "voice": "joining the voice channel",
}


@dataclass(frozen=True)
class Deadlines:
    """Seconds per stage (see the module docstring); ``store`` is the longest a member's request
    waits for a database another process holds, ``store_background`` a finished clip's."""

    generate: float = 180.0
    render: float = 120.0
    encode: float = 120.0
    pianoroll: float = 60.0
    upload: float = 30.0
    other: float = 60.0
    voice: float = 20.0
    store: float = 2.0
    store_background: float = 20.0
    shutdown: float = 8.0

    def of(self, stage: str) -> float:
        return float(getattr(self, stage))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Deadlines:
        """Defaults, overridden by ``CADENZA_DEADLINE_GENERATE=300`` and the like; a value that
        is not a positive number stops start-up with one line."""
        e = os.environ if env is None else env
        values: dict[str, float] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            raw = (e.get(var) or "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0 or len(raw) > 12:
                raise UserError(f"{var} must be a number of seconds above 0 (got "
                                f"{shown(raw, 20)})")
            values[f.name] = value
        store = values.get("store", cls.store)
        if store > MAX_STORE_WAIT:
            raise UserError(f"{ENV_PREFIX}STORE must be at most {MAX_STORE_WAIT:g} s: a member "
                            "must hear back within Discord's 3 s")
        return cls(**values)


class StageTimeout(CadenzaError):
    """A stage ran past its deadline and was stopped; ``str(e)`` is fit for a member."""

    def __init__(self, stage: str, seconds: float) -> None:
        self.stage = stage
        self.seconds = seconds
        label = LABELS.get(stage, stage)
        super().__init__(f"{label} took longer than {seconds:g} s and was stopped")
