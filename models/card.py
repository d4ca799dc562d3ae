"""Model cards: a Markdown page beside each checkpoint, written from the facts it carries."""

from __future__ import annotations

import json
from pathlib import Path

from models.checkpoint import file_sha256, read_payload

# where each corpus style's data comes from (and which styles have none)
DATA_NOTES = {
    "classical": "Bach chorales (music21 corpus): soprano melody, chords from all four voices "
                 "per beat",
    "folk": "Essen folk songs (music21 corpus, ABC) and Foster's lead sheet: melodies, chords "
            "inferred per half bar by Viterbi over diatonic chords",
    "celtic": "O'Neill's 1850, Ryan's Mammoth, Aird's Airs (music21 corpus, ABC): melodies, "
              "chords inferred from the melody",
    "ragtime": "Joplin's Maple Leaf Rag (top line, chords from both hands) and Berlin's "
               "Alexander's Ragtime Band lead sheet: two pieces only",
    "jazz": "no data in the offline corpus",
    "blues": "no data in the offline corpus",
}


def _facts(ckpt: Path, meta: dict, params: str, *extra: str) -> list[str]:
    """The "Facts" section every card opens with."""
    best = f"; best held-out at step {meta['best_step']}" if meta.get("best_step") else ""
    return [
        "## Facts",
        "",
        f"- file: `{ckpt.name}`, {ckpt.stat().st_size / 1e6:.1f} MB, sha256 "
        f"`{file_sha256(ckpt)[:16]}…`",
        f"- parameters: {params}",
        *extra,
        f"- training: {meta.get('steps')} steps in {meta.get('train_seconds', 0) / 60:.1f} "
        f"minutes on {meta.get('machine', '?')}{best}",
        f"- command: `{meta.get('command', '?')}`",
        "",
    ]


def card_text(ckpt: Path) -> str:
    payload = read_payload(ckpt)
    if payload.get("kind") == "vae":
        return vae_card_text(ckpt, payload)
    if payload.get("kind") == "gan":
        return gan_card_text(ckpt, payload)
    meta = payload.get("meta") or {}
    cfg = payload.get("config") or {}
    held = meta.get("heldout") or {}
    styles = meta.get("styles") or payload.get("styles") or []
    trained = meta.get("trained_styles") or []
    lines = [
        f"# Model card: {meta.get('name', ckpt.parent.name)}",
        "",
        f"A style- and chord-conditioned **{meta.get('family', cfg.get('cell', '?')).upper()}** "
        "melody model (Cadenza `models/rnn.py`). It writes the lead line token by token over a "
        "chord plan; the arranger builds comping, bass and drums from the chords.",
        "",
        *_facts(ckpt, meta, f"{meta.get('params', 0):,}; config: `{json.dumps(cfg)}`",
                 f"- vocabulary: {cfg.get('vocab_size')} tokens; styles in the vocabulary: "
                 f"{', '.join(styles)}"),
        "## Held-out evaluation",
        "",
        "A fixed 5% of pieces (by a hash of their source name) never seen in training, whole "
        "sequences, no transposition:",
        "",
        f"- NLL per token, all tokens: **{held.get('nll', float('nan')):.4f} nats** over "
        f"{held.get('tokens', 0):,} tokens",
        f"- NLL per token, sampled tokens only (positions, velocities, pitches, durations, bar "
        f"ends; chords and the preamble are forced at generation time): "
        f"**{held.get('nll_sampled', float('nan')):.4f} nats** over "
        f"{held.get('sampled_tokens', 0):,} tokens",
        "",
        "## Data",
        "",
        "| style | training pieces | tokens | source |",
        "|---|---:|---:|---|",
    ]
    data = meta.get("data") or {}
    for s in styles:
        d = data.get(s, {})
        lines.append(f"| {s} | {d.get('pieces', 0)} | {d.get('tokens', 0):,} | "
                     f"{DATA_NOTES.get(s, 'user MIDI folder')} |")
    missing = [s for s in styles if s not in trained]
    lines += [
        "",
        "Transposition augmentation: each training crop is shifted by -6..+5 semitones within "
        "the melody range.",
        "",
        "## Limits",
        "",
    ]
    if missing:
        lines.append(
            f"- No training data for: {', '.join(missing)}. Cadenza plays those styles through "
            "a data-backed proxy style label (see `bot/styles.py`, `model_styles`), with the "
            "idiom coming from the chord plan (ii-V-I and extended chords, the 12-bar form), "
            "the sampler's pitch bias (blue notes, chord tones), swing, instrumentation and "
            "drums.")
    lines += [
        "- Ragtime rests on two pieces; expect it to quote the Maple Leaf Rag.",
        "- Chords for the folk and celtic tunes are inferred from the melody, so their harmony "
        "labels are plausible rather than authoritative.",
        "- Melodies only: the model does not write the accompaniment.",
    ]
    return "\n".join(lines) + "\n"


def write_card(ckpt: Path) -> Path:
    """card.md from the checkpoint's facts, plus ``card_extra.md`` (hand-written notes and
    measurements) when it exists beside it."""
    path = ckpt.parent / "card.md"
    text = card_text(ckpt)
    extra = ckpt.parent / "card_extra.md"
    if extra.exists():
        text += "\n" + extra.read_text()
    path.write_text(text)
    return path


def vae_card_text(ckpt: Path, payload: dict) -> str:
    meta = payload.get("meta") or {}
    cfg = payload.get("config") or {}
    held = meta.get("heldout") or {}
    data = meta.get("data") or {}
    lines = [
        f"# Model card: {meta.get('name', ckpt.parent.name)}",
        "",
        "A MusicVAE-style **melody VAE** (Cadenza `models/vae.py`): a bidirectional LSTM encodes "
        "two 4/4 bars of melody (32 sixteenth steps: note-on per pitch, hold, rest) into a "
        f"{cfg.get('n_latent')}-dimensional latent code; an LSTM decoder rebuilds the melody "
        "from it. Cadenza uses it for `/seed blend` (spherical interpolation between two seeds' "
        "codes) and as the `vae` model of `/compose` (a slow random walk through the prior, "
        "chords inferred from the melody). It is not style-conditioned.",
        "",
        *_facts(ckpt, meta, f"{meta.get('params', 0):,}; config: `{json.dumps(cfg)}`"),
        "## Held-out reconstruction",
        "",
        f"{meta.get('heldout_windows', 0):,} two-bar windows from the fixed 5% held-out pieces "
        "(never seen in training), encoded to the posterior mean and decoded greedily:",
        "",
        f"- per-step accuracy: **{held.get('step_accuracy', float('nan')):.3f}**",
        f"- note-onset steps: {held.get('onset_accuracy', float('nan')):.3f}; rest steps: "
        f"{held.get('rest_accuracy', float('nan')):.3f}",
        f"- KL at the end of training: {held.get('kl', float('nan')):.1f} nats "
        f"(free bits {cfg.get('free_bits')}, beta {cfg.get('beta')})",
        "",
        "For scale: MusicVAE's 2-bar melody model (Roberts et al. 2018) has a 512-d latent and "
        "was trained on about a million MIDI files on GPUs; this one is small and was trained "
        "for minutes on two CPU cores, so compare it with itself across versions.",
        "",
        "## Data",
        "",
        f"{meta.get('train_windows', 0):,} two-bar training windows (hop one bar) from the offline "
        "corpus melodies, transposed at random by up to 6 semitones:",
        "",
        "| style | windows |",
        "|---|---:|",
    ]
    for s, d in data.items():
        lines.append(f"| {s} | {d.get('windows', 0):,} |")
    lines += ["", "## Limits", "",
              "- Sixteenth-note grid: triplets are approximated; blends are written in 4/4.",
              "- Two-bar phrases: longer structure comes from the interpolation path, not the "
              "model."]
    return "\n".join(lines) + "\n"


def gan_card_text(ckpt: Path, payload: dict) -> str:
    meta = payload.get("meta") or {}
    cfg = payload.get("config") or {}
    params = meta.get("params") or {}
    data = meta.get("data") or {}
    note = meta.get("data_note") or {}
    metrics = meta.get("metrics") or {}
    lines = [
        f"# Model card: {meta.get('name', ckpt.parent.name)}",
        "",
        "A multi-track **GAN** in the MuseGAN tradition (Cadenza `models/gan.py`): a "
        "convolutional generator writes four-bar phrases of a 4-track piano roll (lead, "
        "chords, bass, drums; 48 steps a bar, 84 pitches) from shared, per-bar, per-track and "
        "per-track-per-bar latents, conditioned on style; a convolutional critic trained with "
        "WGAN-GP (n_critic 5, Adam betas 0.5/0.9) judges them. Clips of any length chain "
        "phrases (AABA form); the band then goes through the arranger's instrumentation path "
        "(style programs, drum kit, mix, swing) and the same renderer as every clip.",
        "",
        *_facts(ckpt, meta, f"generator {params.get('generator', 0):,}, critic "
                 f"{params.get('discriminator', 0):,}; config: `{json.dumps(cfg)}`"),
        "## Data",
        "",
        f"{note.get('sources', '')}",
        "",
        "| style | phrases |",
        "|---|---:|",
    ]
    for s, d in sorted(data.items()):
        count = d.get("phrases", d) if isinstance(d, dict) else d
        lines.append(f"| {s} | {count} |")
    lines += [
        "",
        f"## Figures ({meta.get('metric_clips', 0)} generated phrases vs as many real ones, "
        "raw binarised output before clean-up)",
        "",
        "| feature | real mean ± sd | generated mean ± sd | overlap area |",
        "|---|---|---|---:|",
    ]
    for name, m in sorted(metrics.items()):
        if not isinstance(m, dict):
            continue
        def g(k: str, m: dict = m) -> float:
            v = m.get(k)
            return float("nan") if v is None else float(v)

        lines.append(f"| {name} | {g('real_mean'):.3f} ± {g('real_std'):.3f} | "
                     f"{g('gen_mean'):.3f} ± {g('gen_std'):.3f} | {g('overlap'):.2f} |")
    lines += ["", "## Limits", "",
              "- 4/4 only: other meters would need their own model.",
              "- The training bands are arranged by Cadenza's own rules (and, for jazz and blues, "
              "composed by its LSTM pipeline), so the GAN learns Cadenza's idioms, not "
              "recordings of bands.",
              "- Small and briefly trained on a CPU: expect sparse or busy parts at times."]
    return "\n".join(lines) + "\n"
