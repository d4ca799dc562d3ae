"""Model registry: which checkpoints exist, their cards, and one loaded copy of each per process."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cadenza.models.errors import ModelError, shown

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
# the chord-progression model (cadenza.models.training.train_chords writes it)
HARMONY_DIR = Path(__file__).resolve().parent / "harmony"
CHECKPOINT_FILE = "model.pt"
CARD_FILE = "card.md"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path

    @property
    def card(self) -> Path:
        return self.path.parent / CARD_FILE


class ModelRegistry:
    """Name -> checkpoint path; loads lazily, keeps one loaded model per name (thread-safe)."""

    def __init__(self, entries: dict[str, Path] | None = None, *, device: str | None = None,
                 threads: int | None = None):
        """``threads``: torch's CPU threads, set when the first model loads (None leaves
        torch's default). Serving passes 1. Two threads do halve a lone row's LSTM step on an
        idle 2-core machine (190 -> 99 us here: each core streams half the weights), but only
        while one thread issues every torch op: once a second thread (a loader, the batcher)
        has run one, GNU OpenMP has more threads than cores and stops spin-waiting, and a
        step costs 2.5x more than with one thread (measured 2026-12-06); a busy machine is
        worse still. A lone row's logits differ in the last bits between 1 and 2 threads."""
        self._entries = {n: ModelEntry(n, Path(p)) for n, p in (entries or {}).items()}
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()
        self._device = device
        self._threads = threads

    @classmethod
    def discover(cls, *dirs: Path, device: str | None = None,
                 threads: int | None = None) -> ModelRegistry:
        """Every ``<dir>/<name>/model.pt`` under the shipped folder, CADENZA_MODELS and ``dirs``."""
        roots = [SHIPPED_DIR]
        if env := os.environ.get("CADENZA_MODELS"):
            roots += [Path(p) for p in env.split(os.pathsep) if p]
        roots += list(dirs)
        entries: dict[str, Path] = {}
        for root in roots:
            if not root.is_dir():
                continue
            for ckpt in sorted(root.glob(f"*/{CHECKPOINT_FILE}")):
                entries[ckpt.parent.name] = ckpt  # later roots override shipped ones
        return cls(entries, device=device, threads=threads)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            avail = ", ".join(self.names()) or "none installed"
            raise ModelError(f"unknown model {shown(name)} (available: {avail})") from None

    def get(self, name: str):  # -> cadenza.models.checkpoint.Loaded (torch is imported lazily)
        entry = self.entry(name)
        with self._lock:
            if name not in self._loaded:
                import torch

                from cadenza.models.families import load

                if self._threads is not None and not self._loaded:
                    torch.set_num_threads(max(1, self._threads))
                dev = torch.device(self._device) if self._device else None
                self._loaded[name] = load(entry.path, dev)
                log.info("loaded model %s from %s", name, entry.path)
            return self._loaded[name]

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded
