"""``rasplab circuit PROGRAM``: the planted component graph, or the circuit an ablation sees.

Without ``--ablation`` it prints the structural circuit the compiler planted (every edge
backed by non-zero weights; edges carrying only ``one``/``bos`` are marked constant). With
``--ablation zero|mean|resample`` it samples ``--samples`` clean inputs (and, for
resample, their corrupted partners) from the program's samplers and prints the effective
circuit under that ablation (``analysis.ground_truth``). ``--verify`` adds the checks:
faithfulness (largest read-out change and whether every decoded output is unchanged with
everything outside the circuit ablated) and minimality (circuit edges whose extra ablation
changes no decoded output); the structural circuit is verified under zero ablation.
``-o FILE.png`` draws the graph: nodes placed by layer, edges coloured by the head input
they enter (q, k, v; grey for MLP and output), constant edges dashed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.registry import ABLATIONS
from ..inputs import UsageError
from ._common import (
    CORRUPTION_HELP,
    add_program_arguments,
    corruption_name,
    format_table,
    positive_int,
    print_json,
    target_from_args,
)

ORDER = 60
INPUT_COLORS = {"q": "#1f77b4", "k": "#2ca02c", "v": "#9467bd", None: "#7f7f7f"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "circuit", help="print (and draw) the planted circuit or the circuit an ablation sees",
        description="Print the compiled model's component graph: nodes embed, pos, L{l}.H{h}, "
        "L{l}.MLP, output; an edge wherever a component reads a residual direction an "
        "earlier one writes (q/k/v named for heads). With --ablation, the circuit that "
        "ablation can see on sampled inputs; with --verify, check it by running "
        "interventions.",
    )
    add_program_arguments(p)
    p.add_argument("--ablation", choices=ABLATIONS,
                   help="show the effective circuit under this ablation (default: the "
                   "structural circuit)")
    p.add_argument("--corruption", type=corruption_name, default="same-length",
                   metavar="NAME", help=CORRUPTION_HELP)
    p.add_argument("--truth", choices=("network", "program"), default="network",
                   help="with --ablation resample: the network's greedy truth (default) or "
                   "the one derived from the program in the interpreter "
                   "(analysis/program_truth.py)")
    p.add_argument("--verify", action="store_true",
                   help="run the interventions: faithfulness and minimality")
    p.add_argument("--samples", type=positive_int, default=256, metavar="N",
                   help="clean inputs to sample for --ablation/--verify (default 256)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", "--output", metavar="FILE.png", help="also draw the graph here")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------
# Drawing


#: Above this many drawn edges, edges carry no text labels (colour still says q/k/v):
#: the text and --json output list what each edge carries.
LABEL_LIMIT = 20


def _node_label(name: str, computes: list[str], width: int = 18) -> str:
    """The node's name, then what it computes, wrapped to ``width`` (at most two lines)."""
    if not computes:
        return name
    import textwrap

    lines = textwrap.wrap(", ".join(computes), width, break_on_hyphens=False)
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 1] + "\u2026"]
    return "\n".join([name, *lines])


def draw_circuit(circuit: dict, edges: list[dict], path: str | Path, *, title: str = "",
                 dpi: int = 150) -> Path:
    """Draw ``edges`` over the nodes of ``circuit`` (a planted-circuit dict) as a PNG.

    Columns are forward slots (embeddings, then per layer: heads, MLP; output last), with
    the layer written above each; nodes that no drawn edge touches are drawn faded. With
    more than ``LABEL_LIMIT`` edges the edges are not labelled, so labels never pile up.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    nodes = circuit["nodes"]
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(n["slot"], []).append(n["name"])
    pos = {}
    col_of: dict[str, int] = {}
    for x, slot in enumerate(sorted(columns)):
        names = columns[slot]
        for i, name in enumerate(names):
            pos[name] = (x * 2.0, 1.6 * ((len(names) - 1) / 2 - i))
            col_of[name] = x
    used = {e["from"] for e in edges} | {e["to"] for e in edges}
    tallest = max(len(v) for v in columns.values())
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(columns) + 2.2),
                                    max(3.5, 1.25 * tallest + 1.8)))
    computes = {n["name"]: n.get("computes", []) for n in nodes}
    for name, (x, y) in pos.items():
        active = name in used
        ax.text(x, y, _node_label(name, computes[name]), ha="center", va="center",
                fontsize=6.5, zorder=4, color="black" if active else "#999999",
                bbox=dict(boxstyle="round,pad=0.35", fc="#fdd49e" if active else "#f2f2f2",
                          ec="#555555" if active else "#bbbbbb"))
    top = max(y for _, y in pos.values())
    for x, slot in enumerate(sorted(columns)):  # which layer each column belongs to
        layer = next(n.get("layer") for n in nodes if n["slot"] == slot)
        kind = "attn" if slot % 2 == 0 else "MLP"
        label = f"L{layer} {kind}" if isinstance(layer, int) and layer >= 0 else ""
        if label:
            ax.text(2.0 * x, top + 1.6, label, ha="center", fontsize=7, color="#777777")
    label_edges = len(edges) <= LABEL_LIMIT
    handles = [Line2D([0], [0], color=c, lw=1.6, label=f"into {k}" if k else "into MLP/output")
               for k, c in INPUT_COLORS.items()]
    handles.append(Line2D([0], [0], color="#555555", lw=1.2, ls="--", alpha=0.5,
                          label="constant (one/bos only)"))
    legend_title = None if label_edges else f"{len(edges)} edges: unlabelled\n(see the text output)"
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False, title=legend_title, title_fontsize=7)
    ax.set_xlim(-1.0, 2.0 * (len(columns) - 1) + 1.0)
    ys = [y for _, y in pos.values()]
    ax.set_ylim(min(ys) - 2.0, max(ys) + 2.0)
    ax.axis("off")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()

    to_px, to_data = ax.transData, ax.transData.inverted()
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for e in edges:
        by_pair.setdefault((e["from"], e["to"]), []).append(e)
    for (a, b), group in by_pair.items():
        span = col_of[b] - col_of[a]
        for k, e in enumerate(group):
            # edges that skip columns bend, more the farther they go, so they pass around
            # the nodes in between instead of through them
            # (a bounded sag: rad ~ 1/span), away from the middle row, so they stay inside
            away = -1.0 if (pos[a][1] + pos[b][1]) / 2 > 0 else 1.0
            bend = 0.0 if span <= 1 else away * min(0.35, 1.1 / span)
            rad = 0.12 * (k - (len(group) - 1) / 2) + bend
            color = INPUT_COLORS[e["input"]]
            const = bool(e.get("constant"))
            ax.annotate(
                "", xy=pos[b], xytext=pos[a], zorder=2,
                arrowprops=dict(
                    arrowstyle="-|>", color=color, lw=1.0 if const else 1.3,
                    alpha=0.45 if const else 0.9, linestyle="--" if const else "-",
                    shrinkA=24, shrinkB=24, connectionstyle=f"arc3,rad={rad}",
                ),
            )
            if const or not label_edges:
                continue
            # label at the middle of the arc (arc3 bends in display coordinates)
            (xa, ya), (xb, yb) = to_px.transform(pos[a]), to_px.transform(pos[b])
            mid = ((xa + xb) / 2 + rad * (yb - ya) / 2, (ya + yb) / 2 - rad * (xb - xa) / 2)
            lx, ly = to_data.transform(mid)
            text = (f"{e['input']}: " if e["input"] else "") + ",".join(
                c for c in e["carries"] if c not in ("one", "bos"))
            ax.text(lx, ly, text[:24], fontsize=5.5, ha="center", va="center", color=color,
                    zorder=5, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none",
                                        alpha=0.85))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------
# The command


def _edge_rows(edges: list[dict]) -> list[list[str]]:
    rows = [["from", "to", "input", "carries"]]
    for e in edges:
        carries = ", ".join(e["carries"]) + ("  (constant)" if e.get("constant") else "")
        rows.append([e["from"], e["to"], e["input"] or "-", carries])
    return rows


def _public_edge(e: dict) -> dict:
    return {k: e[k] for k in ("from", "to", "input", "carries", "directions", "constant")}


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    compiled = target.compile(causal=args.causal)
    circuit = compiled.planted.to_json(plain=True)
    edges = list(circuit["edges"])
    which = args.ablation or "structural"
    truth = derived = None
    if args.truth == "program":
        if args.ablation not in (None, "resample"):
            raise UsageError(f"--truth program exists for resample ablation only ({args.ablation}"
                             " has no program-level meaning); use --ablation resample")
        args.ablation = which = "resample"
    if args.ablation or args.verify:
        spec = target.sampler()
        from rasplab.analysis import ground_truth as gt
        from rasplab.analysis.interventions import prepare

        try:
            clean, corrupted = gt.sample_dataset(spec, args.samples, args.seed,
                                                 args.corruption)
        except (ValueError, AttributeError) as err:
            raise UsageError(f"--corruption {args.corruption}: {err}") from None
        try:
            if args.ablation is None:
                truth = gt.structural_truth(prepare(compiled, clean, "zero"),
                                            program=target.name)
            elif args.truth == "program":
                from rasplab.analysis import program_truth as pt

                exp = prepare(compiled, clean, "resample", corrupted=corrupted,
                              corruption=args.corruption)
                derived = pt.derive(spec, compiled, clean, corrupted,
                                    corruption=args.corruption, exp=exp)
                truth = pt.as_ground_truth(derived, exp)
                which = "program-derived resample"
            else:
                truth = gt.ground_truth(compiled, clean, args.ablation, corrupted=corrupted,
                                        program=target.name, corruption=args.corruption)
        except ValueError as err:
            raise UsageError(str(err)) from None
        edges = [e.to_json() for e in truth.edges]

    if args.output:
        title = f"{target.name}: {which} circuit ({len(edges)} edges)"
        draw_circuit(circuit, edges, args.output, title=title)

    if args.json:
        data = {"program": target.name, "circuit": which, "nodes": circuit["nodes"],
                "edges": [_public_edge(e) for e in edges],
                "variables": circuit["variables"]}
        if truth is not None:
            data["samples"] = truth.samples
            data["corruption"] = truth.corruption
        if derived is not None:
            data["truth"] = "program"
            data.update({k: derived.to_dict()[k] for k in (
                "program_edges", "alternatives", "unique", "constant", "unrealised")})
        if args.verify and truth is not None:
            v = truth.verification
            data["ablation"] = v.ablation
            data["faithfulness"] = {"max_change": v.max_change,
                                    "outputs_unchanged": v.outputs_unchanged,
                                    "changed_positions": v.changed_positions}
            data["minimality"] = {"failures": list(v.failures)}
        if args.output:
            data["png"] = str(args.output)
        print_json(data)
        return 0

    stats = compiled.stats()
    if truth is not None and truth.corruption:
        which += f" ({truth.corruption} corruption)"
    print(f"{target.name}: {which} circuit, {len(edges)} edges over "
          f"{len(circuit['nodes'])} nodes ({stats['layers']} layers, "
          f"{stats['heads_total']} heads)")
    if truth is not None:
        print(f"inputs: {truth.samples} sampled (seed {args.seed})"
              + (f"; {len(truth.removed)} structural edges not needed: "
                 f"{', '.join(truth.removed)}" if args.ablation and truth.removed else ""))
    if derived is not None:
        print(f"program edges ({len(derived.program_edges)}, found in the interpreter): "
              f"{', '.join(derived.program_edges) or '-'}")
        print(f"constant edges kept where the network needs them: "
              f"{', '.join(derived.constant) or '-'}"
              + ("" if derived.unique else
                 f"; {len(derived.alternatives)} minimal program-edge sets found"))
    print(format_table(_edge_rows(edges), right_from=99))
    print("(input: which of a head's query, key or value reads the edge, - for an MLP or the "
          "output; carries: the program variables on it; constant: only the one/bos "
          "directions, which resample ablation between inputs of one length cannot "
          "remove)")
    if args.verify and truth is not None:
        v = truth.verification
        outcome = ("unchanged" if v.outputs_unchanged
                   else f"changed at {v.changed_positions} positions")
        print(f"verified under {v.ablation} ablation: with everything outside the circuit "
              f"ablated, max read-out change {v.max_change:.3g}, decoded outputs {outcome}")
        if v.failures:
            print(f"minimality: {len(v.failures)} edge(s) whose ablation changes no decoded "
                  f"output: {', '.join(v.failures)}")
        else:
            print("minimality: ablating any one circuit edge changes some decoded output")
    if args.output:
        print(f"wrote {args.output}")
    return 0
