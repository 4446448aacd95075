"""Reproduce the ACDC paper's tracr comparison (Conmy et al. 2023) on rasplab's models.

Tasks: ``reverse`` (vocab {1, 2, 3}, max_seq_len 5) and ``frac_prevs`` (``frac_prevs(tokens
== "x")``, vocab {w, x, y, z}, max_seq_len 5; the paper's "tracr-proportion"), both from
the program library. Ablations: resample and zero. Methods: ACDC and subnetwork probing
(the paper's), EAP, EAP-IG and edge/node patching for reference. Every method runs on the
complete component graph.

Each run is scored against three targets:

* **ACDC-style reference** (``zero-ref``): our effective circuit under *zero* ablation. The
  paper's tracr reference circuits were produced by ACDC under zero ablation (Miller et al.
  2024), so this is the closest analogue of what its published AUCs were measured against,
  whatever ablation the method ran with. Edges over the complete graph, as in the paper.
* **structural**: every edge the compiler planted, over the complete graph.
* **matched**: the effective circuit of the ablation the method ran with (the lab's own
  truth), over the structural edges.

Edge AUC, and node AUC over I/O nodes (the node granularity of the ACDC graph: every
component output and every head/MLP input separately) and over components. The report
(``results/acdc_reproduction.md``) puts the numbers next to the published ones and explains
each difference; ROC curves go to ``results/acdc_reproduction_<task>_<ablation>.png``.

    python experiments/acdc_reproduction.py [--samples 256] [--seed 0] [--out results]
        [--truth network|program]

``--truth program`` scores the resample runs' *matched* target against the truth derived
from the program (``analysis/program_truth.py``; zero ablation has no program-level
meaning and keeps the network's) and writes ``acdc_reproduction_program_truth.*``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rasplab.analysis import scoring
from rasplab.analysis.methods.common import circuit_nodes, structural
from rasplab.analysis.recover import Session, plain
from rasplab.programs import registry

TASKS = {"reverse": "tracr-reverse", "frac_prevs": "tracr-proportion"}
ABLATIONS = ("resample", "zero")
METHODS = ("acdc", "sp", "eap", "eap_ig", "patching")
LABEL = {"acdc": "ACDC", "sp": "SP", "eap": "EAP", "eap_ig": "EAP-IG", "patching": "patching"}

#: Edge / node ROC AUC from the ACDC paper (tables in its repository).
PUBLISHED = {
    ("reverse", "resample", "acdc"): (0.200, 0.312),
    ("reverse", "zero", "acdc"): (1.000, 1.000),
    ("frac_prevs", "resample", "acdc"): (0.600, 0.727),
    ("frac_prevs", "zero", "acdc"): (1.000, 1.000),
    ("reverse", "resample", "sp"): (0.416, 0.533),
    ("reverse", "zero", "sp"): (0.692, 0.947),
    ("frac_prevs", "resample", "sp"): (0.400, 0.716),
    ("frac_prevs", "zero", "sp"): (0.561, 0.875),
}
#: auto-circuit 1.0.1 on tracr's own models (ANCHORS.md): edge AUC vs the resample truth /
#: vs ACDC's zero-ablation reference; ACDC and SP there ran under resample.
AUTO_CIRCUIT = {
    ("reverse", "eap"): (1.000, 0.600), ("frac_prevs", "eap"): (1.000, 0.800),
    ("reverse", "acdc"): (1.000, 0.600), ("frac_prevs", "acdc"): (1.000, 0.800),
    ("reverse", "sp"): (1.000, 0.537), ("frac_prevs", "sp"): (1.000, 0.978),
}


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{x:.3f}"


def profile(scores, labels) -> str:
    """The ranking, level by level from the top: ``score: targets/others``."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    levels = np.unique(s)[::-1]
    digits = 3  # enough significant digits to tell the levels apart
    while digits < 12 and len({f"{v:.{digits}g}" for v in levels}) < len(levels):
        digits += 1
    parts = []
    for v in levels:
        at = s == v
        parts.append(f"{v:.{digits}g}: {int((at & y).sum())}/{int((at & ~y).sum())}")
    return "; ".join(parts)


def points_auc(masks: np.ndarray, labels: np.ndarray) -> float:
    """The ACDC paper's construction: one ROC point per threshold's circuit, plus (0, 0)
    and (1, 1), trapezoids in between (after sorting by FPR, then TPR)."""
    y = np.asarray(labels, bool)
    pts = {(0.0, 0.0), (1.0, 1.0)}
    for m in masks:
        m = np.asarray(m, bool)
        pts.add((float((m & ~y).sum() / max((~y).sum(), 1)),
                 float((m & y).sum() / max(y.sum(), 1))))
    pts = sorted(pts)
    return float(sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:])))


def evaluate(session: Session) -> dict:
    rows = {}
    for task in TASKS:
        zero_truth = session.truth(task, "zero")
        for ablation in ABLATIONS:
            for method in METHODS:
                rec = session.run(task, method, ablation)
                g = rec.experiment.graph
                es = np.asarray(rec.result.edge_scores, np.float64)
                st = structural(g)
                targets = {"zero_ref": np.asarray(zero_truth.mask) > 0.5,
                           "structural": st,
                           "matched": np.asarray(rec.truth.mask) > 0.5}
                row = {"seconds": rec.result.seconds, "scores": rec.scores,
                       "circuit": rec.result.circuit_keys(g), "n_edges": g.n_edges,
                       "n_structural": int(st.sum())}
                io = scoring.io_node_scores(g, es)
                for name, y in targets.items():
                    over = st if name == "matched" else np.ones(g.n_edges, bool)
                    row[f"{name}_edge"] = scoring.roc_auc(es[over], y[over])
                    row[f"{name}_io_node"] = scoring.roc_auc(io, scoring.io_node_labels(g, y))
                    row[f"{name}_node"] = scoring.roc_auc(rec.result.node_scores,
                                                          circuit_nodes(g, y))
                    row[f"{name}_profile"] = profile(es[over], y[over])
                    row[f"{name}_curve"] = scoring.roc_curve(es[over], y[over])[:2]
                    top = es[over].max() if over.any() else 0.0
                    row[f"{name}_found"] = (int((y[over] & (es[over] > es[over].min())).sum())
                                            if es[over].min() < top else 0, int(y[over].sum()))
                    if method == "acdc":
                        row[f"{name}_points_auc"] = points_auc(
                            rec.result.info["masks"][:, over], y[over])
                if method == "acdc":
                    row["acdc_sizes"] = rec.result.info["circuit_sizes"]
                    row["acdc_matches_truth_everywhere"] = bool(all(
                        np.array_equal(m, targets["matched"]) for m in rec.result.info["masks"]))
                rows[(task, ablation, method)] = row
    return rows


def circuits_section(session: Session) -> list[str]:
    lines = ["## The targets", ""]
    for task in TASKS:
        exp = session.experiment(task, "zero")
        g = exp.graph
        st = structural(g)
        lines.append(f"**{task}** ({TASKS[task]}): complete graph {g.n_edges} edges, "
                     f"{int(st.sum())} structural; components {', '.join(g.senders)}.")
        lines.append("")
        lines.append(f"- structural: {', '.join(k for k, s in zip(g.edge_keys, st) if s)}")
        for ablation in ABLATIONS:
            t = session.truth(task, ablation)
            lines.append(f"- {ablation} ({len(t.keys)} edges): {', '.join(t.keys)}")
        lines.append("")
    return lines


def table(rows: dict) -> list[str]:
    head = ("| task | ablation | method | published edge / node | ours vs zero-ref edge / "
            "I/O node | ours vs structural edge / I/O node | ours vs matched edge / I/O node"
            " / node | auto-circuit (tracr) vs resample truth / zero-ref |")
    out = [head, "|" + "---|" * 8]
    for (task, ablation, method), r in rows.items():
        pub = PUBLISHED.get((task, ablation, method))
        ac = AUTO_CIRCUIT.get((task, method)) if ablation == "resample" else None
        out.append(
            f"| {TASKS[task]} | {ablation} | {LABEL[method]} | "
            f"{f'{pub[0]:.3f} / {pub[1]:.3f}' if pub else '-'} | "
            f"{fmt(r['zero_ref_edge'])} / {fmt(r['zero_ref_io_node'])} | "
            f"{fmt(r['structural_edge'])} / {fmt(r['structural_io_node'])} | "
            f"{fmt(r['matched_edge'])} / {fmt(r['matched_io_node'])} / {fmt(r['matched_node'])} | "
            f"{f'{ac[0]:.3f} / {ac[1]:.3f}' if ac else '-'} |")
    return out


def explanations(rows: dict) -> list[str]:
    r = rows
    R = lambda t, a, m, k: fmt(r[(t, a, m)][k])  # noqa: E731

    def found(task: str) -> tuple[int, int]:
        return r[(task, "resample", "acdc")]["zero_ref_found"]

    everywhere = all(r[(t, a, "acdc")]["acdc_matches_truth_everywhere"]
                     for t in TASKS for a in ABLATIONS)
    sp_higher = all(r[(t, a, "sp")]["zero_ref_edge"] >= PUBLISHED[(t, a, "sp")][0]
                    for t in TASKS for a in ABLATIONS)
    eap_rev_zero = r[("reverse", "zero", "eap")]["matched_edge"]
    lines = ["## Why our numbers differ from the published ones", ""]
    lines += [
        "**Different graphs.** The paper scores tracr's models on the graph ACDC builds: "
        "one embedding node (tokens and positions together), every layer with a head and an "
        "MLP whether or not tracr put anything in them, head inputs q/k/v as separate nodes "
        "(77 edges for reverse, 23 for proportion, as auto-circuit builds it). rasplab's "
        f"compiler keeps `embed` (tokens, constants, `one`, `bos`) apart from `pos`, emits "
        f"no empty blocks (reverse has no heads in layers 1-2; frac_prevs no MLP in layer 1), "
        f"so the complete graph has {r[('reverse', 'zero', 'acdc')]['n_edges']} edges for "
        f"reverse ({r[('reverse', 'zero', 'acdc')]['n_structural']} structural) and "
        f"{r[('frac_prevs', 'zero', 'acdc')]['n_edges']} for frac_prevs "
        f"({r[('frac_prevs', 'zero', 'acdc')]['n_structural']} structural). Every AUC here "
        "is therefore over a different set of negatives than the paper's: tracr's empty "
        "components are easy negatives that every method ranks low, and they are missing.",
        "",
        "**Component-level node AUC is undefined for most rows** (n/a): our models contain "
        "no component that is idle, so every component is in the structural circuit and, "
        "under zero ablation, in the effective circuit as well: there is no negative node. "
        "The paper's node AUCs exist because tracr's layout adds empty heads and MLPs. We "
        "report node AUC over I/O nodes instead (each component output and each head/MLP "
        "input separately, the ACDC graph's node granularity), which has negatives where a "
        "head's query or key input is not needed; it is still undefined against the "
        "structural circuit (every input reads something).",
        "",
        "**ACDC, zero ablation "
        f"({R('reverse', 'zero', 'acdc', 'zero_ref_edge')} reverse, "
        f"{R('frac_prevs', 'zero', 'acdc', 'zero_ref_edge')} proportion vs the zero "
        "reference; published 1.000 / 1.000).** Agrees. In the paper this is ACDC scored "
        "against ACDC's own zero-ablation output, so 1.000 is by construction; here the "
        "reference comes from the lab's greedy search on decoded outputs, and ACDC with the "
        "read-out distance and the 10^-10..10^-2 grid "
        + ("keeps exactly the matched circuit at every threshold, in every row of this "
           "report (compiled models either change an output by a whole value or not at "
           "all, so no threshold in the grid separates the two criteria). "
           if everywhere else
           "does not keep exactly the matched circuit at every threshold (circuit sizes "
           "per threshold: "
           + "; ".join(f"{t} {a}: {r[(t, a, 'acdc')]['acdc_sizes']}" for t in TASKS
                       for a in ABLATIONS) + "). ")
        + "Against the structural "
        f"circuit it is {R('reverse', 'zero', 'acdc', 'structural_edge')} / "
        f"{R('frac_prevs', 'zero', 'acdc', 'structural_edge')}: the structural edges zero "
        "ablation cannot see (the TRUE selector's query/key, the BOS-only gates; see the "
        "targets above) tie at score 0 with the non-structural pairs.",
        "",
        "**ACDC, resample ablation "
        f"({R('reverse', 'resample', 'acdc', 'zero_ref_edge')} reverse, "
        f"{R('frac_prevs', 'resample', 'acdc', 'zero_ref_edge')} proportion vs the zero "
        "reference; published 0.200 / 0.600).** Under resample with same-length corrupted "
        "inputs, ACDC keeps exactly the resample-visible circuit (reverse: tokens into the "
        "final head's value and that head into the output; frac_prevs: tokens -> MLP0 -> "
        "the head's value -> output), which is Miller et al.'s finding and the lab's "
        f"matched truth (AUC {R('reverse', 'resample', 'acdc', 'matched_edge')} / "
        f"{R('frac_prevs', 'resample', 'acdc', 'matched_edge')} vs matched). That circuit is "
        "a subset of the zero reference, so its edges rank first and the rest of the "
        "reference ties with the negatives at 0; with ties counted one half the AUC is "
        "(k + (P - k) / 2) / P over k found of P reference edges, at least 0.5. auto-circuit "
        "measured 0.600 / 0.800 for the same comparison on tracr's own models (ANCHORS.md), "
        f"and our values are the same construction on our graphs (reverse: "
        f"{found('reverse')[0]} of {found('reverse')[1]} reference edges found, "
        f"{R('reverse', 'resample', 'acdc', 'zero_ref_edge')}; frac_prevs: "
        f"{found('frac_prevs')[0]} of {found('frac_prevs')[1]}, "
        f"{R('frac_prevs', 'resample', 'acdc', 'zero_ref_edge')}). The published 0.200 and "
        "0.600 are below what a subset of the reference can score under this construction; "
        "we cannot reproduce them, and read them as coming from the paper's own ROC "
        "construction from per-threshold points and its tracr data/corruption, which we do "
        "not replicate. (Our per-threshold-points AUC, the paper's construction, is "
        f"{R('reverse', 'resample', 'acdc', 'zero_ref_points_auc')} / "
        f"{R('frac_prevs', 'resample', 'acdc', 'zero_ref_points_auc')}: the same, since "
        "the circuits across thresholds are nested.)",
        "",
        "**SP "
        f"(reverse {R('reverse', 'resample', 'sp', 'zero_ref_edge')} resample, "
        f"{R('reverse', 'zero', 'sp', 'zero_ref_edge')} zero; proportion "
        f"{R('frac_prevs', 'resample', 'sp', 'zero_ref_edge')} resample, "
        f"{R('frac_prevs', 'zero', 'sp', 'zero_ref_edge')} zero vs the zero reference; "
        "published 0.416 / 0.692 and 0.400 / 0.561).** "
        + ("Ours is higher everywhere. " if sp_higher else "Ours differs. ")
        + "Three differences, the first two as we read the paper (not checked against its "
        "code): (1) our subnetwork probing masks edges, the paper's masks nodes (an edge "
        "ROC from node masks cannot drop one edge of a needed node); (2) our ROC ranks the "
        "final mask logits of one run, while the paper's SP points come from separate runs "
        "over a sweep of regularisation strengths; (3) our loss "
        "normalises faithfulness by the fully ablated distance and uses the hard-concrete "
        "expected-L0 penalty, trained with several mask samples per step, which on these "
        "exact models separates needed edges (logits grow) from unneeded ones (logits fall "
        "at the penalty's rate, all tied). Under resample SP reproduces ACDC's ranking "
        "(the resample-visible circuit on top), so its zero-reference AUC is the same "
        "subset construction as ACDC's; auto-circuit's SP on tracr gave 0.537 / 0.978.",
        "",
        "**EAP and EAP-IG (no published tracr numbers).** Under resample EAP matches "
        f"auto-circuit (vs resample truth {R('reverse', 'resample', 'eap', 'matched_edge')} "
        f"/ {R('frac_prevs', 'resample', 'eap', 'matched_edge')}; vs zero reference "
        f"{R('reverse', 'resample', 'eap', 'zero_ref_edge')} / "
        f"{R('frac_prevs', 'resample', 'eap', 'zero_ref_edge')}, auto-circuit 0.600 / "
        "0.800). Under zero ablation, plain EAP on reverse scores "
        f"{fmt(eap_rev_zero)} against its own matched truth: the "
        "compiled MLPs are lookup tables that are flat around every valid input and the "
        "attention is saturated, so the gradient at the clean point is exactly zero for "
        "most of the length / index machinery"
        + (", while edges outside the truth that carry only the BOS baseline get a "
           "float-rounding gradient and outrank them" if eap_rev_zero < 0.5 else "")
        + ". Integrating the gradient along the mask path (EAP-IG) recovers most of it "
        f"({R('reverse', 'zero', 'eap_ig', 'matched_edge')}).",
        "",
        "**Edge/node patching** is exact here for every single-edge effect, and every edge "
        "of these circuits matters on its own, so it scores 1.000 against every matched "
        "truth; it would fall short where two routes are redundant.",
    ]
    return lines


def write_plots(rows: dict, out_dir: Path, stem: str = "acdc_reproduction") -> list[str]:
    paths = []
    for task in TASKS:
        for ablation in ABLATIONS:
            panels = {}
            for target, title in (("zero_ref", "vs zero-ablation reference (complete graph)"),
                                  ("matched", f"vs {ablation}-matched truth (structural)"),
                                  ("structural", "vs structural circuit (complete graph)")):
                panels[title] = {
                    LABEL[m]: (*rows[(task, ablation, m)][f"{target}_curve"],
                               rows[(task, ablation, m)][f"{target}_edge"])
                    for m in METHODS}
            path = out_dir / f"{stem}_{task}_{ablation}.png"
            scoring.plot_roc_panels(panels, path,
                                    title=f"{TASKS[task]} ({task}), {ablation} ablation: edge ROC")
            paths.append(str(path))
    return paths


def report(session: Session, rows: dict, plots: list[str], seconds: float) -> str:
    lines = [
        "# ACDC paper reproduction on rasplab models",
        "",
        f"Generated by `experiments/acdc_reproduction.py` ({session.samples} inputs per task, "
        f"seed {session.seed}, {seconds:.0f} s on this machine). Edge AUC against the "
        "zero-ablation reference and the structural circuit is over the complete graph; "
        "against the matched truth over the structural edges. Ties count one half. n/a: "
        "the target has no negatives (or no positives) among the scored items.",
        "",
        *table(rows),
        "",
        *circuits_section(session),
        *explanations(rows),
        "",
        "## Ranking profiles",
        "",
        "Each method's edge scores, level by level from the top, as `score: target edges / "
        "other edges` (against the zero-ablation reference, complete graph). An AUC follows "
        "from these counts.",
        "",
    ]
    for (task, ablation, method), r in rows.items():
        lines.append(f"- {task}, {ablation}, {LABEL[method]}: {r['zero_ref_profile']}")
    lines += ["", "## Method timings (this run, seconds; includes JAX compilation the first "
              "time a graph is seen)", ""]
    for (task, ablation, method), r in rows.items():
        lines.append(f"- {task}, {ablation}, {LABEL[method]}: {r['seconds']:.2f}")
    lines += ["", "## Plots", ""] + [f"- `{p}`" for p in plots]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results", help="output folder (default results)")
    ap.add_argument("--truth", choices=("network", "program"), default="network",
                    help="resample's matched target (default network)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "acdc_reproduction" + ("_program_truth" if args.truth == "program" else "")
    t0 = time.perf_counter()
    session = Session(samples=args.samples, seed=args.seed, truth=args.truth)
    for task in TASKS:
        session.program(registry.get(task))
    rows = evaluate(session)
    plots = write_plots(rows, out_dir, stem)
    text = report(session, rows, plots, time.perf_counter() - t0)
    if args.truth == "program":
        text = text.replace("\n", "\n\n**Matched target under resample: the program-derived "
                            "truth** (`analysis/program_truth.py`); zero ablation keeps the "
                            "network's.\n", 1)
    (out_dir / f"{stem}.md").write_text(text)
    data = {f"{t}/{a}/{m}": {k: v for k, v in r.items() if not k.endswith("_curve")}
            for (t, a, m), r in rows.items()}
    (out_dir / f"{stem}.json").write_text(json.dumps(plain(data), indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
