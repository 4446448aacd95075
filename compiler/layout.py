"""Place blocks into layers as early as their inputs allow.

Sub-layer slots alternate attention (even) and MLP (odd). A node goes into the first slot
of its type after all its inputs are available, so the number of layers is the length of
the longest attention/MLP dependency chain: the lower bound for this set of blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import rasp
from .build import NodeBlocks
from .graph import ProgramGraph


@dataclass
class Placement:
    node: str
    layer: int
    sublayer: str  # "attn" | "mlp"


def chain_lower_bound(graph: ProgramGraph) -> int:
    """Layers that the longest attention/MLP dependency chain of the program needs.

    Read off the program alone, not its blocks: every Aggregate is an attention block,
    every Map/SequenceMap an MLP, a SelectorWidth an attention block then an MLP; selectors
    are scored inside the attention that uses them. No layout of the program has fewer
    layers; ``place`` reaches it unless a selector had to be rewritten (``rewrite.py``).
    """
    slot: dict[str, int] = {}
    for node in graph.topo():
        after = max((slot[c] for c in node.children), default=-1)
        expr = node.expr
        if isinstance(expr, rasp.Aggregate):
            slot[node.id] = _first(0, after)
        elif isinstance(expr, rasp.SelectorWidth):
            slot[node.id] = _first(0, after) + 1
        elif isinstance(expr, (rasp.Map, rasp.SequenceMap)):
            slot[node.id] = _first(1, after)
        else:  # primitives, constants, selectors
            slot[node.id] = after
    return max(slot.values()) // 2 + 1


def _first(parity: int, after: int) -> int:
    slot = after + 1
    return slot if slot % 2 == parity else slot + 1


def place(graph: ProgramGraph, blocks: dict[str, NodeBlocks]) -> tuple[list[Placement], int]:
    """Placements of every block and the number of layers."""
    ready: dict[str, int] = {}
    placements: list[Placement] = []
    last = -1
    for node in graph.topo():
        after = max((ready[c] for c in node.children), default=-1)
        nb = blocks.get(node.id)
        if nb is None:
            ready[node.id] = after if node.children else -1
            continue
        if nb.head is not None:
            slot = _first(0, after)
            placements.append(Placement(node.id, slot // 2, "attn"))
            ready[node.id] = slot
            if nb.mlp is not None:
                placements.append(Placement(node.id, slot // 2, "mlp"))
                if nb.head.op == "selector_width":
                    ready[node.id] = slot + 1
            last = max(last, ready[node.id], slot + (nb.mlp is not None))
        else:
            slot = _first(1, after)
            placements.append(Placement(node.id, slot // 2, "mlp"))
            ready[node.id] = slot
            last = max(last, slot)
    return placements, (last // 2 + 1) if last >= 0 else 0
