"""Model cards: a Markdown page beside each checkpoint, written from the facts it carries."""

from __future__ import annotations

import json
from pathlib import Path

from cadenza.models.checkpoint import file_sha256, read_payload

# where each style's data comes from, with its licence (the style corpus's MANIFEST.md)
DATA_NOTES = {
    "classical": "Bach chorales (music21 corpus, BSD/public domain): soprano melody, chords "
                 "from all four voices per beat",
    "folk": "Essen folk songs (music21 corpus, ABC) and Foster's lead sheet: melodies, chords "
            "inferred per half bar by Viterbi over diatonic chords",
    "celtic": "O'Neill's 1850, Ryan's Mammoth, Aird's Airs (music21 corpus, ABC): melodies, "
              "chords inferred from the melody",
    "ragtime": "public-domain rags from the Mutopia Project (Joplin, Turpin, Hunter: right hand's "
               "top line, chords read from both hands) and music21's Maple Leaf Rag and "
               "Alexander's Ragtime Band; not the CC BY-NC-SA Joplin edition",
    "jazz": "Weimar Jazz Database solos on a 1/12-beat grid with their annotated chords and form "
            "(ODbL 1.0; jazzodata conversion, MIT) and Impro-Visor transcriptions with changes "
            "(GPL-2.0)",
    "blues": "the blues-form solos of the Weimar Jazz Database (ODbL 1.0) and the blues "
             "Impro-Visor transcriptions (GPL-2.0)",
}
CREDITS = (
    "Credits: Weimar Jazz Database — Pfleiderer et al. (eds.), *Inside the Jazzomat*, 2017, "
    "Jazzomat Research Project, ODbL 1.0, beat-aligned by K. Frieler's jazzodata (MIT); "
    "Impro-Visor transcriptions and the Imaginary Book behind the Jazz Chord Progressions Corpus "
    "(Bunks, Dixon, Weyde, Di Giorgi, ISMIR 2023) — Robert Keller and Harvey Mudd College, "
    "GPL-2.0; rags — the Mutopia Project, public domain; music21's corpus (BSD-3-Clause). The "
    "CC BY-NC-SA 4.0 Joplin edition (Craig Stuart Sapp) is used for evaluation only."
)


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
        *([f"- onset grid: {meta['onset_grid']}"] if meta.get("onset_grid") else []),
        "",
    ]


def card_text(ckpt: Path) -> str:
    payload = read_payload(ckpt)
    if payload.get("kind") == "chords":
        return chords_card_text(ckpt, payload)
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
        "chord plan; the arranger builds comping, bass and drums from the chords. Every bar it "
        "also sees the form (section letter, bar in the section, bars left in it, whether the "
        "section was heard before), in a returning section its echo (the same bar of the "
        "earlier statement: how far back, where its next note falls, which pitch it played "
        "there), and may open a bar with `REP_k`, the bar k back again: it learned when and "
        "how real tunes bring an idea back.",
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
        *_per_style_nll(held.get("per_style") or {}),
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
    choruses = {s: d["form_choruses"] for s, d in data.items() if d.get("form_choruses")}
    if choruses:
        lines += ["", "Form choruses (`models/training/form_choruses.py`): besides the solos, "
                  "training saw " + ", ".join(f"{n} {s}" for s, n in choruses.items())
                  + " choruses of the solos laid out as their tunes' heads are (per chorus of a "
                  "solo; AABA: the chorus's first 8 bars, again with a later phrase's ending, "
                  "its next 8, the first 8 again; blues AAB: the first line again over bars "
                  "5-8's chords), so a returning section learns to restate its first statement "
                  "in these styles too; from training solos only, every note and chord the "
                  "solo's own, sampled within their style but left out of the style weights."]
    spelled = {s: d["spelled_returns"] for s, d in data.items() if d.get("spelled_returns")}
    if spelled:
        lines += ["", "Returns written out (`cadenza.models.training.dataset.spelled_returns`): "
                  "the training sequences that bring a bar back as `REP_k` were also seen with "
                  "those bars written out note by note (" + ", ".join(
                      f"{n} {s}" for s, n in spelled.items()) + "), so the model learned to "
                  "play a return from its echo as well as to copy it; left out of the style "
                  "weights."]
    lines += ["", skipped_line(meta)]
    lines += [
        "",
        "Transposition augmentation: each training crop is shifted by -6..+5 semitones within "
        "the melody range.",
        "",
        CREDITS,
        "",
        "## Limits",
        "",
    ]
    if missing:
        lines.append(f"- No training data for: {', '.join(missing)}: this model refuses those "
                     "styles (no style is played through another style's data).")
    lines += [
        "- Jazz and blues are learned from improvised solos (with their real changes), so the "
        "lines are solo-like: they rarely repeat a bar exactly, as the solos do not.",
        "- Ragtime rests on 17 public-domain rags plus two music21 pieces.",
        "- Chords for the folk and celtic tunes are inferred from the melody, so their harmony "
        "labels are plausible rather than authoritative.",
        "- Melodies only: the model does not write the accompaniment.",
    ]
    return "\n".join(lines) + "\n"


def skipped_line(meta: dict) -> str:
    """What training left out of its sources, by reason (not recorded before 2026-12-07)."""
    if "skipped" not in meta:
        return "Skipped in training: not recorded by the training run that made this checkpoint."
    skipped = meta["skipped"]
    if not skipped:
        return "Skipped in training: nothing (every file parsed and every piece encoded)."
    return (f"Skipped in training: {sum(skipped.values())} source files or pieces "
            f"({', '.join(f'{k}: {v}' for k, v in skipped.items())}); a file that does not "
            "parse or a piece that does not encode is counted and left out, never fatal.")


def _per_style_nll(per_style: dict) -> list[str]:
    if not per_style:
        return []
    lines = ["Per style (held-out pieces of that style; jazz and blues on real solos):", "",
             "| style | NLL / token (nats) | tokens |", "|---|---:|---:|"]
    for style, d in per_style.items():
        lines.append(f"| {style} | {d['nll']:.4f} | {d['tokens']:,} |")
    return [*lines, ""]


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
    chords = cfg.get("chord_dim", 0)
    lines = [
        f"# Model card: {meta.get('name', ckpt.parent.name)}",
        "",
        "A MusicVAE-style **melody VAE** (Cadenza `models/vae.py`): a bidirectional LSTM encodes "
        "two 4/4 bars of melody (32 sixteenth steps: note-on per pitch, hold, rest) into a "
        f"{cfg.get('n_latent')}-dimensional latent code; an LSTM decoder rebuilds the melody "
        "from it. Cadenza uses it for `/seed blend` (spherical interpolation between two seeds' "
        "codes) and as the `vae` model of `/compose` (a slow random walk through the prior, "
        + ("over the clip's chord plan: the decoder (and, where the config says "
           "encoder_chords, the encoder) reads the chord sounding at every step, its pitch "
           "classes and root, so the chord model's ii-V and 12-bar changes reach the VAE's "
           "jazz and blues" if chords else "chords inferred from the melody")
        + "). It is a conditional VAE: a style embedding joins the encoder's and decoder's "
        "inputs, so a code from the prior decodes in the style asked for, and sections that "
        "come back (AABA) decode again from the code they had.",
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
        f"{meta.get('train_windows', 0):,} two-bar training windows (hop one bar) from the "
        "training melodies of every style (drawn style-balanced: windows ** 0.5), transposed "
        "at random by up to 6 semitones"
        + (f", each with the chords under it ({meta.get('chords')})" if chords else "") + ":",
        "",
        "| style | windows |",
        "|---|---:|",
    ]
    for s, d in data.items():
        lines.append(f"| {s} | {d.get('windows', 0):,} |")
    lines += ["", skipped_line(meta), "", CREDITS, "", "## Limits", "",
              "- Sixteenth-note grid: triplets are approximated; blends are written in 4/4"
              + (" and decoded over the seeds' opening chords (A's, then B's)." if chords
                 else "."),
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
    rhythm = (" Each track's rhythm code (one per clip) decides, the same in every bar, at "
              "which steps notes may change (a sample-and-hold over the bar generator's "
              "proposals) and which steps are silent, so the band keeps its groove; the critic "
              "also reads where each track's onsets change from bar to bar."
              if cfg.get("rhythm_dim") else "")
    lines = [
        f"# Model card: {meta.get('name', ckpt.parent.name)}",
        "",
        "A multi-track **GAN** in the MuseGAN tradition (Cadenza `models/gan.py`): a "
        "convolutional generator writes four-bar phrases of a 4-track piano roll (lead, "
        "chords, bass, drums; 48 steps a bar, 84 pitches) from shared, per-bar, per-track and "
        "per-track-per-bar latents, conditioned on style; a convolutional critic trained with "
        f"WGAN-GP (n_critic 5, Adam betas 0.5/0.9) judges them.{rhythm} Clips of any length "
        "chain phrases (AABA form); the band then goes through the arranger's instrumentation "
        "path (style programs, drum kit, mix) and the same renderer as every clip.",
        "",
        *_facts(ckpt, meta, f"generator {params.get('generator', 0):,}, critic "
                 f"{params.get('discriminator', 0):,}; config: `{json.dumps(cfg)}`"),
        "## Data",
        "",
        f"{note.get('sources', '')}",
        "",
    ]
    per_style = note.get("per_style") or {}
    if per_style:
        lines += ["| style | pieces | bars | phrase hop | phrases |", "|---|---:|---:|---:|---:|"]
        for s, d in per_style.items():
            lines.append(f"| {s} | {d.get('pieces', 0)} | {d.get('bars', 0)} | "
                         f"{d.get('hop') or '-'} | {d.get('phrases', 0)} |")
    else:
        lines += ["| style | phrases |", "|---|---:|"]
        for s, d in sorted(data.items()):
            count = d.get("phrases", d) if isinstance(d, dict) else d
            lines.append(f"| {s} | {count} |")
    credits = note.get("credits") or []
    if credits:
        lines += ["", "Sources and licences:", "", *(f"- {c}" for c in credits),
                  "", "The CC BY-NC-SA 4.0 Joplin edition (Craig Stuart Sapp) is used for "
                  "evaluation only: these weights never saw it."]
    if note.get("skipped"):
        lines += ["", "Left out: " + ", ".join(f"{k}: {v}" for k, v in
                                               sorted(note["skipped"].items()))]
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
              "- 4/4 only: other meters would need their own model (2/4 rags are learned as "
              "4/4 bars holding two 2/4 bars).",
              "- The melodies are real (solos, transcriptions, rags, tunes) but the bands around "
              "them are arranged by Cadenza's own rules, so the GAN learns Cadenza's comping, "
              "bass and drum idioms, not recordings of bands.",
              "- Small and briefly trained on a CPU: expect sparse or busy parts at times.",
              "- It writes whole phrases and knows no last bar: a clip seldom ends on its "
              "key's tonic. Composing draws up to 8 clips (`GANRequest.candidates`: the "
              "request's own first, the others only when it does not end at home) and keeps "
              "the first that ends best (the tonic at rest, else the tonic, else its own)."]
    return "\n".join(lines) + "\n"


def chords_card_text(ckpt: Path, payload: dict) -> str:
    meta = payload.get("meta") or {}
    cfg = payload.get("config") or {}
    held = meta.get("heldout") or {}
    data = meta.get("data") or {}
    lines = [
        "# Model card: chords",
        "",
        "A style- and form-conditioned **chord-progression model** (Cadenza "
        "`models/chord_model.py`, the recurrent network of `models/rnn.py` over its own "
        "vocabulary). It writes the chord plan of jazz, blues and ragtime clips bar by bar: "
        "chords relative to the key's tonic (every quality the charts use: 7b9, 7alt, m7b5, "
        "13, 6/9 …), how many beats each lasts, and `REP_k` for a bar that repeats the bar k "
        "back (A sections that come back). The rule-based plans of `bot/harmony.py` stay the "
        "fallback and serve the styles without chart data (folk, celtic, classical).",
        "",
        *_facts(ckpt, meta, f"{meta.get('params', 0):,}; config: `{json.dumps(cfg)}`",
                f"- styles: {', '.join(meta.get('styles') or [])}"),
        "## Held-out evaluation",
        "",
        "The fixed hashed 5% of progressions, never seen in training:",
        "",
        f"- NLL per token: **{held.get('nll', float('nan')):.4f} nats** over "
        f"{held.get('tokens', 0):,} tokens",
    ]
    for style, v in (held.get("per_style") or {}).items():
        lines.append(f"- {style}: {v:.4f} nats/token")
    lines += ["", "## Data", "", "| style | progressions | tokens | source |",
              "|---|---:|---:|---|"]
    sources = {
        "jazz": "Jazz Chord Progressions Corpus charts (Imaginary Book, GPL-2.0), key from the "
                "chords when the signature is a placeholder",
        "blues": "the 12-bar subset of the same charts",
        "ragtime": "chords read from both hands of 17 public-domain Mutopia rags",
    }
    for style, d in data.items():
        lines.append(f"| {style} | {d.get('progressions', 0)} | {d.get('tokens', 0):,} | "
                     f"{sources.get(style, '')} |")
    skipped = meta.get("skipped") or {}
    if skipped:
        lines += ["", "Skipped: " + ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items()))]
    lines += ["", CREDITS, "", "## Limits", "",
              "- Chart keys come from the key signature unless the chords clearly fit another "
              "key (Krumhansl-Schmuckler over chord tones): a few modulating tunes may be "
              "labelled in the key of their longest section.",
              "- Sections are inferred from repeated 8- or 4-bar phrases of each chart; the "
              "charts carry no form labels.",
              "- The last bar of a plan stays on the tonic in qualities that rest in the "
              "key's mode (`cadenza.music.theory.rests`: I, I6, Imaj7, I69, Iadd9 ...; i, "
              "im6, im7 ...; a blues' I7, I9, I13, I7#9 too), so a clip ends home: "
              "the charts' turnarounds in their last bar lead into a next chorus that a clip "
              "does not have (for part of 2026-12-07 the tonic held half the bar and a "
              "turnaround could follow: 43 of 64 jazz plans then ended off the tonic; on the "
              "tonic alone, I7 still ended 46 of 64 32-bar rags)."]
    return "\n".join(lines) + "\n"
