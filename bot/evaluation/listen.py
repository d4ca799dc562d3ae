"""The listening page: one piano roll per style per model (the first clip of each set), one of a
real excerpt per style, with the parameters that reproduce each clip with ``cadenza compose``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cadenza.evaluation.data import Generated
from cadenza.evaluation.references import Reference
from cadenza.music.score import Score
from cadenza.pianoroll import draw_pianoroll

log = logging.getLogger(__name__)

FOLDER = "listen"  # the piano rolls go in this sub-folder of the report's


def _facts(score: Score) -> str:
    m = score.time_signature
    return f"{score.bars} bars of {m[0]}/{m[1]}, {round(score.tempo)} bpm, {score.key.name}"


def write_listening(out_dir: Path, refs: Mapping[str, Reference],
                    gen: Mapping[str, Mapping[str, Generated]], models: Sequence[str],
                    styles: Sequence[str]) -> dict[str, Any]:
    """Render the piano rolls into ``out_dir/listen/`` and write ``out_dir/listen.md``; return
    what was written (for results.json)."""
    folder = out_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {}
    L = ["# Cadenza: listen to each model in each style", "",
         "One clip per style and model: the first clip of the evaluation's set (seed "
         "`run seed × 1000003 + i`, the first i whose meter the piano roll holds), as "
         "`Composer.compose` made it, arrangement included. Each caption gives the command "
         "that makes the same clip (MP3, MIDI and this picture) with the same checkpoints, "
         "and the parameters the seed resolves to. Beside them, one real held-out excerpt "
         "of the style, arranged the same way. Figures: [report.md](report.md).", ""]
    for s in styles:
        L += [f"## {s}", ""]
        ref = refs.get(s)
        if ref is not None and ref.example is not None:
            path = draw_pianoroll(ref.example, folder / f"{s}_real.png",
                                    title=f"real {s}: {ref.clips[0].source}")
            record[f"{s}/real"] = {"png": f"{FOLDER}/{path.name}", "source": ref.clips[0].source}
            L += [f"**real** ({ref.clips[0].source}; {_facts(ref.example)})", "",
                  f"![real {s}]({FOLDER}/{path.name})", ""]
        for m in models:
            g = gen[m][s]
            if g.example is None or g.example_request is None:
                L += [f"**{m}**: no clip ({g.error or 'none generated'})", ""]
                continue
            r = g.example_request
            cmd = f"cadenza compose --style {s} --bars {r.bars} --seed {r.seed} --model {m}"
            path = draw_pianoroll(g.example, folder / f"{s}_{m}.png",
                                    title=f"{m} · {s} · seed {r.seed}")
            form = r.form or "style default"
            record[f"{s}/{m}"] = {"png": f"{FOLDER}/{path.name}", "command": cmd,
                                  "seed": r.seed, "form": form}
            L += [f"**{m}**: `{cmd}` ({_facts(g.example)}, form {form}, temperature "
                  f"{r.temperature:g})", "", f"![{m} {s}]({FOLDER}/{path.name})", ""]
    (out_dir / "listen.md").write_text("\n".join(L).rstrip() + "\n")
    return record
