"""Training budget and learning-rate schedule shared by the training loops."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch


@dataclass
class Budget:
    """A step count and an optional time limit, whichever ends first."""

    steps: int
    minutes: float | None = None
    t0: float = field(default_factory=time.time)

    @property
    def deadline(self) -> float | None:
        return self.t0 + self.minutes * 60 if self.minutes else None

    def frac(self, step: int) -> float:
        """How far through training we are (0..1), by steps or by time."""
        f = step / max(1, self.steps)
        if self.deadline:
            f = max(f, (time.time() - self.t0) / (self.deadline - self.t0))
        return min(f, 1.0)

    def over(self, step: int) -> bool:
        return step >= self.steps or bool(self.deadline and time.time() > self.deadline)

    def elapsed(self) -> float:
        return time.time() - self.t0


def set_threads(n: int) -> None:
    """Torch's CPU threads. On a busy 2-core machine 1 thread trains 4-8x faster than 2 (OpenMP
    threads spin-wait for each other), so the trainers default to 1."""
    torch.set_num_threads(max(1, n))


def cosine_lr(base: float, frac: float, floor: float = 0.1) -> float:
    """Cosine decay from ``base`` to ``floor * base``."""
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def step_optimizer(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                   lr: float, clip: float = 1.0) -> None:
    """Set the learning rate, back-propagate, clip the gradient norm and update."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
