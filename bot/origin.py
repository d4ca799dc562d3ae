"""What a clip or seed is built on: its origin (kept with jobs and clips, so a retry or a
reroll makes it again) and its lineage as members read it. Below the services that use it
(seeds, the job queue, the application), so none of them imports another for these types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from cadenza.errors import UserError
from cadenza.store_rows import Link, Node, Parent

ORIGIN_KINDS = ("compose", "seed", "continue", "vary", "blend")


@dataclass(frozen=True)
class Origin:
    """What a clip is built on, with all it takes to make it again: it is stored with the job
    (a retry after a restart rebuilds it) and in the clip's params (a reroll keeps it).

    ``seed_id`` is the seed continued (kind 'seed') or blend A; ``seed_b`` blend B; ``clip_id``
    the clip continued or varied; ``reroll_of`` the clip this one rerolls; ``label`` names the
    parents for people ('seed “riff”').
    """

    kind: str = "compose"
    seed_id: int | None = None
    seed_b: int | None = None
    clip_id: int | None = None
    reroll_of: int | None = None
    label: str = ""
    reroll_ref: int | None = None  # what the member called the rerolled clip ("#12")

    @property
    def plain(self) -> bool:
        return self.kind == "compose" and self.reroll_of is None

    def parents(self) -> tuple[Parent, ...]:
        links: list[Parent] = []
        if self.kind == "seed" and self.seed_id is not None:
            links.append(Parent("seed", self.seed_id, "continues"))
        elif self.kind == "continue" and self.clip_id is not None:
            links.append(Parent("clip", self.clip_id, "continues"))
        elif self.kind == "vary" and self.clip_id is not None:
            links.append(Parent("clip", self.clip_id, "varies"))
        elif self.kind == "blend" and self.seed_id is not None and self.seed_b is not None:
            links += [Parent("seed", self.seed_id, "blends", "a"),
                      Parent("seed", self.seed_b, "blends", "b")]
        if self.reroll_of is not None and self.reroll_of != self.clip_id:
            links.append(Parent("clip", self.reroll_of, "rerolls"))
        return tuple(links)

    def rerolled(self, clip_id: int, ref: int | None = None) -> Origin:
        return replace(self, reroll_of=clip_id, reroll_ref=ref)

    def to_params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Origin:
        """The origin stored by ``to_params`` (a job's or a clip's); missing means plain."""
        if not params:
            return PLAIN
        kind = params.get("kind", "compose")
        if kind not in ORIGIN_KINDS:
            raise UserError(f"this request was built on something Cadenza no longer knows "
                            f"({kind!r})")

        def ident(name: str) -> int | None:
            value = params.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(kind, ident("seed_id"), ident("seed_b"), ident("clip_id"), ident("reroll_of"),
                   str(params.get("label", "")), ident("reroll_ref"))

    def describe(self) -> str:
        """A few words for progress lines: 'continuing seed “riff”'."""
        words = {"seed": "continuing", "continue": "continuing", "vary": "a variation of",
                 "blend": "blending"}.get(self.kind)
        text = f"{words} {self.label}" if words and self.label else ""
        if self.reroll_of is not None:
            text = f"{text}, " if text else ""
            text += f"a reroll of clip #{self.reroll_ref or self.reroll_of}"
        return text


PLAIN = Origin()


@dataclass(frozen=True)
class Lineage:
    """What a clip or seed was built on: the direct links, and every member whose work it
    builds on (all ancestors, nearest first)."""

    parents: tuple[Link, ...]
    credits: tuple[str, ...]
    scope: int | None = None  # whose numbers the clips are shown by (None: their own)

    def phrases(self) -> list[str]:
        """One phrase per parent ('continues seed “riff” by alice'); a blend's ends together."""
        out: list[str] = []
        blend = sorted((p for p in self.parents if p.relation == "blends"),
                       key=lambda p: p.role or "")
        if blend:
            out.append("blends " + " → ".join(node_text(p.parent, self.scope) for p in blend))
        for p in self.parents:
            if p.relation != "blends":
                out.append(f"{RELATION_WORDS[p.relation]} {node_text(p.parent, self.scope)}")
        return out

    def text(self) -> str:
        """'continues seed “riff” by alice · credits: alice' (empty when built on nothing)."""
        if not self.parents:
            return ""
        return " · ".join(self.phrases()) + " · credits: " + ", ".join(self.credits)


RELATION_WORDS = {"continues": "continues", "varies": "a variation of",
                  "rerolls": "a reroll of", "blends": "blends", "shares": "cut from"}


PRIVATE_LABEL = ""  # a seed the viewer may not see, in a tree: no name (seed names are non-empty)


def node_text(node: Node, scope: int | None = None) -> str:
    """'clip #12 (jazz) by bob', 'seed “riff” by alice (deleted)'; a clip by its number in
    ``scope`` (a server's own, or its public id: another server's unpublished clip has none
    there)."""
    if node.kind == "clip":
        ref = node.ref_in(scope)
        if ref is None:
            return f"a clip by {node.user_name} in another server"
        return f"clip #{ref} ({node.label}) by {node.user_name}"
    if node.label == PRIVATE_LABEL:
        return f"a private seed by {node.user_name}"
    return f"seed “{node.label}” by {node.user_name}" + (" (deleted)" if node.deleted else "")


def lineage_of(links: list[Link], scope: int | None = None) -> Lineage:
    credits = list(dict.fromkeys(link.parent.user_name for link in links))
    return Lineage(tuple(link for link in links if link.depth == 0), tuple(credits), scope)
