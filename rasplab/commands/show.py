"""``rasplab show PROGRAM -o FILE.png``: the compiled model's residual layout and wiring.

The picture has one column per residual dimension, grouped into bands by program
variable (``one``, ``bos``, then each variable in order; scratch directions belong to
their variable's band), and one row per block: the embeddings, each head, each MLP slice
(rows grouped by layer) and the unembedding. A cell is marked where the block reads that
dimension (for heads: through W_q, W_k or W_v, drawn as thirds of the cell) or writes it
(W_o columns, MLP output columns). Everything is read off the non-zero weights, so the
picture shows what the weights do, not what the compiler intended.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..compiler import CompiledProgram
from ._common import add_program_arguments, target_from_args

ORDER = 50

READ_COLORS = {"q": "#1f77b4", "k": "#2ca02c", "v": "#9467bd", "in": "#1f77b4"}
WRITE_COLOR = "#ff7f0e"
BAND_CAP = 12  # in wide models, bands wider than this many dimensions are compressed


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "show", help="draw the residual layout and what each block reads and writes",
        description="Draw the compiled model as a PNG: residual dimensions grouped by "
        "program variable, and for every head and MLP the dimensions it reads (query, key, "
        "value or MLP input) and writes.",
    )
    add_program_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write")
    p.add_argument("--dpi", type=int, default=150, help="resolution (default 150)")
    p.set_defaults(func=run)


@dataclass
class BlockIO:
    """Which residual dimensions one block reads (by input) and writes."""

    name: str  # "embed", "pos", "L0.H1", "L0.MLP", "unembed"
    variable: str  # the program variable it computes ("" for embed/pos/unembed)
    op: str
    reads: dict[str, list[int]] = field(default_factory=dict)  # "q"/"k"/"v"/"in" -> dims
    writes: list[int] = field(default_factory=list)


def _nz_rows(w: np.ndarray) -> list[int]:
    return np.flatnonzero(np.abs(w).reshape(w.shape[0], -1).sum(axis=1) > 0).tolist()


def _nz_cols(w: np.ndarray) -> list[int]:
    return _nz_rows(np.asarray(w).reshape(-1, w.shape[-1]).T)


def block_io(compiled: CompiledProgram) -> list[BlockIO]:
    """Every block's reads and writes, from the non-zero entries of its weights."""
    p = compiled.params
    blocks = [
        BlockIO("embed", "tokens", "token embedding", writes=_nz_cols(p["embed.token"])),
        BlockIO("pos", "indices", "position embedding", writes=_nz_cols(p["embed.pos"])),
    ]
    comps = sorted(compiled.components, key=lambda c: (c.layer, c.kind != "attn", c.index))
    for c in comps:
        if c.kind == "attn":
            pre = f"layers.{c.layer}.attn."
            reads = {x: _nz_rows(p[pre + x][c.index]) for x in ("q", "k", "v")}
            writes = _nz_cols(p[pre + "o"][c.index])
        else:
            pre = f"layers.{c.layer}.mlp."
            sl = slice(c.index, c.index + c.size)
            reads = {"in": _nz_rows(p[pre + "in"][:, sl])}
            writes = _nz_cols(p[pre + "out"][sl])
        blocks.append(BlockIO(c.name, c.node, c.op, reads, writes))
    blocks.append(BlockIO("unembed", compiled.output, "read-out",
                          reads={"in": _nz_rows(p["unembed"])}))
    return blocks


def residual_bands(compiled: CompiledProgram) -> list[tuple[str, int, int]]:
    """``(name, first dim, last dim + 1)`` for each run of dimensions of one variable (one
    band for a variant's stream, where no variable sits on its own dimensions)."""
    variant = compiled.meta.get("variant")
    if variant:
        return [(f"{variant['rung']} stream (no variable on an axis)", 0,
                 compiled.config.d_model)]
    owner = list(compiled.residual_labels)
    for var, info in compiled.variables.items():
        for d in info.dims:
            owner[d] = var
    for i, label in enumerate(compiled.residual_labels):
        if label.endswith(":__width__"):
            owner[i] = label[: -len(":__width__")]
    bands: list[tuple[str, int, int]] = []
    for i, name in enumerate(owner):
        if bands and bands[-1][0] == name and bands[-1][2] == i:
            bands[-1] = (name, bands[-1][1], i + 1)
        else:
            bands.append((name, i, i + 1))
    return bands


def draw_model(compiled: CompiledProgram, path: str | Path, *, title: str = "",
               dpi: int = 150) -> Path:
    """Write the picture described in the module docstring to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    blocks = block_io(compiled)
    bands = residual_bands(compiled)
    d = compiled.config.d_model
    n = len(blocks)
    # x layout: one unit per dimension; in a wide model a band's width grows slowly past
    # BAND_CAP dimensions, so small variables stay readable next to big lookup tables.
    x0 = np.zeros(d)
    cw = np.ones(d)
    band_x: list[tuple[float, float]] = []
    cursor = 0.0
    for _name, lo, hi in bands:
        size = hi - lo
        width = float(size) if d <= 120 or size <= BAND_CAP else BAND_CAP + 0.1 * (size - BAND_CAP)
        width = max(width, 1.3)  # room for the band's (vertical) label
        cw[lo:hi] = width / size
        x0[lo:hi] = cursor + np.arange(size) * (width / size)
        band_x.append((cursor, cursor + width))
        cursor += width
    total = cursor
    fig_w = min(max(8.0, 6.0 + total * 0.2), 48.0)
    fig_h = max(4.0, 2.8 + 0.32 * n)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))

    for b, (left, right) in enumerate(band_x):  # alternating band shading
        if b % 2 == 0:
            ax.add_patch(Rectangle((left, 0), right - left, n, color="#f0f0f0", lw=0, zorder=0))
        if b:
            ax.axvline(left, color="#bbbbbb", lw=0.6, zorder=1)

    def cell(dim: int, y: float, height: float, color: str) -> None:
        pad = 0.08 * cw[dim] if cw[dim] >= 0.5 else 0.0
        ax.add_patch(Rectangle((x0[dim] + pad, y), cw[dim] - 2 * pad, height, color=color,
                               lw=0, zorder=2))

    for row, blk in enumerate(blocks):
        y = n - 1 - row  # first block at the top
        parts = list(blk.reads.items())
        for j, (which, dims) in enumerate(parts):
            frac = 1.0 / len(parts)
            for dim in dims:
                cell(dim, y + 0.1 + 0.8 * (1 - (j + 1) * frac), 0.8 * frac, READ_COLORS[which])
        for dim in blk.writes:
            cell(dim, y + 0.1, 0.8, WRITE_COLOR)

    # layer separators
    prev_layer = None
    for row, blk in enumerate(blocks):
        layer = blk.name.split(".")[0] if blk.name.startswith("L") else blk.name
        layer = "embed" if layer == "pos" else layer
        if prev_layer is not None and layer != prev_layer:
            ax.axhline(n - row, color="#555555", lw=0.8, zorder=3)
        prev_layer = layer

    ax.set_xlim(0, total)
    ax.set_ylim(0, n)
    ax.set_yticks([n - 1 - r + 0.5 for r in range(n)])
    ax.set_yticklabels([
        f"{b.name}  {b.variable} ({b.op})" if b.variable else b.name for b in blocks
    ], fontsize=8)
    centers = [(left + right) / 2 for left, right in band_x]
    ax.set_xticks(centers)
    ax.set_xticklabels([f"{name} [{hi - lo}]" for name, lo, hi in bands], rotation=90,
                       ha="center", va="bottom", fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(axis="both", length=0)
    stats = compiled.stats()
    ax.set_xlabel(
        f"residual stream: {d} dimensions, grouped by variable ([number of dims]"
        f"{'; wide bands drawn compressed' if total < d else ''}); "
        f"{stats['layers']} layers, {stats['heads_total']} heads, "
        f"{stats['mlp_hidden_total']} MLP units, {stats['nonzero_params']:,} non-zero params",
        fontsize=8,
    )
    handles = [
        Patch(color=READ_COLORS["q"], label="reads: query / MLP input"),
        Patch(color=READ_COLORS["k"], label="reads: key"),
        Patch(color=READ_COLORS["v"], label="reads: value"),
        Patch(color=WRITE_COLOR, label="writes"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
              frameon=False)
    ax.set_title(title or f"{compiled.output}", fontsize=11, pad=12, loc="left")
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    compiled = target.compile(causal=args.causal)
    out = draw_model(compiled, args.output, title=f"{target.name}: {target.description}"
                     if target.description else target.name, dpi=args.dpi)
    print(f"wrote {out}")
    return 0
