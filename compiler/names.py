"""One naming scheme for components, receivers and edges of the component graph.

Components: ``embed`` (token embedding), ``pos`` (position embedding), ``L{l}.H{h}`` (a
head), ``L{l}.MLP`` (a layer's whole MLP), ``output`` (the unembedding). A head has three
inputs (``q``, ``k``, ``v``); an edge into a head names the input it enters:
``embed->L3.H0.v``; an edge into an MLP or the output names none: ``L3.H0->output``.
Activation sites use TransformerLens's hook names (``analysis/sites.py``). Every file,
plot, report and the command line use these forms through ``str`` and ``parse``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

HEAD_INPUTS = ("q", "k", "v")


class Kind(StrEnum):
    """What a component is."""

    EMBED = "embed"
    POS = "pos"
    ATTN = "attn"
    MLP = "mlp"
    OUTPUT = "output"


_NODE = re.compile(r"^L(\d+)\.(?:H(\d+)|(MLP))$")


@dataclass(frozen=True)
class Node:
    """A component of the graph; ``str(node)`` is its name."""

    kind: Kind
    layer: int | None = None
    head: int | None = None

    def __str__(self) -> str:
        if self.kind is Kind.ATTN:
            return f"L{self.layer}.H{self.head}"
        if self.kind is Kind.MLP:
            return f"L{self.layer}.MLP"
        return self.kind.value

    @classmethod
    def parse(cls, text: str) -> Node:
        if text in (Kind.EMBED.value, Kind.POS.value, Kind.OUTPUT.value):
            return cls(Kind(text))
        m = _NODE.match(text)
        if not m:
            raise ValueError(
                f"{text!r} is not a component name; use embed, pos, L<layer>.H<head>, "
                "L<layer>.MLP or output"
            )
        if m.group(3):
            return cls(Kind.MLP, int(m.group(1)))
        return cls(Kind.ATTN, int(m.group(1)), int(m.group(2)))

    def slot(self, num_layers: int) -> int:
        """Forward position: -1 for the embeddings, ``2l`` for layer ``l``'s heads,
        ``2l + 1`` for its MLP, ``2 * num_layers`` for the output."""
        if self.kind in (Kind.EMBED, Kind.POS):
            return -1
        if self.kind is Kind.OUTPUT:
            return 2 * num_layers
        return 2 * self.layer + (self.kind is Kind.MLP)


@dataclass(frozen=True)
class Edge:
    """``sender -> receiver`` (entering input ``q``/``k``/``v`` of a head, else None)."""

    sender: Node
    receiver: Node
    input: str | None = None

    def __str__(self) -> str:
        tail = f".{self.input}" if self.input else ""
        return f"{self.sender}->{self.receiver}{tail}"

    @classmethod
    def parse(cls, text: str) -> Edge:
        if "->" not in text:
            raise ValueError(f"{text!r} is not an edge; write it as SENDER->RECEIVER, "
                             "e.g. embed->L3.H0.v or L3.H0->output")
        left, right = text.split("->", 1)
        inp = None
        head, _, last = right.rpartition(".")
        if last in HEAD_INPUTS:
            right, inp = head, last
        edge = cls(Node.parse(left), Node.parse(right), inp)
        if (edge.receiver.kind is Kind.ATTN) != (inp is not None):
            raise ValueError(f"{text!r}: an edge into a head names its input (.q, .k or .v), "
                             "an edge into an MLP or the output names none")
        return edge


def edge_name(sender: str, receiver: str, input: str | None) -> str:
    """``"embed->L3.H0.v"`` from its parts."""
    return f"{sender}->{receiver}" + (f".{input}" if input else "")


__all__ = ["HEAD_INPUTS", "Kind", "Node", "Edge", "edge_name"]
