"""``rasplab recover PROGRAM --method M --ablation A``: run a circuit-recovery method and
score it against the planted circuit.

Samples ``--samples`` clean inputs (and, for resample, corrupted partners of the same
length) from the program's samplers, runs the method on the complete component graph and
prints edge and node ROC AUC against the ablation-matched ground truth (the circuit that
ablation can see on these inputs) and against the structural circuit, the precision,
recall and faithfulness of the circuit the method picks itself, and its wall time.
``-o FILE.png`` draws the ROC curves. ``--set KEY=VALUE`` passes an option to the method
(e.g. ``--set steps=300`` for sp, ``--set circuit_threshold=1e-4`` for acdc).
"""

from __future__ import annotations

import argparse
import math

from ..analysis.registry import ABLATIONS, method_choices
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

ORDER = 70
METHOD_CHOICES = method_choices()


def _option(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    raw = raw.strip()
    value: object
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return key.strip(), value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recover", help="run a circuit-recovery method and score it against the planted circuit",
        description="Run a circuit-recovery method (ACDC, EAP, EAP-IG, activation/edge "
        "patching, subnetwork probing) on a compiled program and score its edge and node "
        "rankings (ROC AUC) and its own circuit (precision, recall, faithfulness) against "
        "the planted circuit: the one the chosen ablation can see on the sampled inputs, "
        "and the structural one.",
    )
    add_program_arguments(p)
    p.add_argument("--method", required=True, choices=METHOD_CHOICES, help="the method")
    p.add_argument("--ablation", default="resample", choices=ABLATIONS,
                   help="what a patched edge receives (default resample)")
    p.add_argument("--corruption", type=corruption_name, default="same-length",
                   metavar="NAME", help=CORRUPTION_HELP)
    p.add_argument("--samples", type=positive_int, default=256, metavar="N",
                   help="clean inputs to sample (default 256)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--set", dest="options", action="append", type=_option, default=[],
                   metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", "--output", metavar="FILE.png", help="draw the ROC curves here")
    p.set_defaults(func=run)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        return f"{x:.3f}"
    return str(x)


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    spec = target.sampler()
    compiled = target.compile(causal=args.causal)

    from rasplab.analysis.recover import Session, plain

    options = dict(args.options)
    session = Session(samples=args.samples, seed=args.seed, corruption=args.corruption)
    session.program(spec, compiled=compiled)
    try:
        rec = session.run(spec, args.method, args.ablation, options=options)
    except TypeError as err:  # an option the method does not take
        if options and "unexpected keyword" in str(err):
            raise UsageError(f"--set: {err}") from None
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.output:
        rec.plot(args.output)
    s = rec.scores
    if args.json:
        data = rec.to_dict()
        if args.output:
            data["png"] = str(args.output)
        print_json(plain(data))  # an undefined AUC is null
        return 0
    g = rec.experiment.graph
    corr = f", {rec.experiment.corruption} corruption" if rec.experiment.corruption else ""
    print(f"{target.name}: {rec.method} under {rec.ablation} ablation{corr}, {rec.samples} "
          f"inputs (seed {rec.seed}); {s['n_edges']} structural edges of {s['n_edges_complete']} "
          f"in the complete graph; {s['seconds']:.2f} s")
    print(f"target (ablation-matched, {s['target_edges']} edges): "
          + ", ".join(rec.truth.keys))
    rows = [["", "edge AUC", "node AUC"],
            ["vs ablation-matched", _fmt(s["edge_auc"]), _fmt(s["node_auc"])],
            ["vs structural", _fmt(s["edge_auc_structural"]), _fmt(s["node_auc_structural"])]]
    print(format_table(rows))
    if rec.result.circuit is not None:
        f = s["faithfulness"]
        print(f"own circuit: {s['circuit_edges']} edges; precision {_fmt(s['precision'])}, "
              f"recall {_fmt(s['recall'])} (vs structural: "
              f"{_fmt(s['precision_structural'])}, {_fmt(s['recall_structural'])})")
        print(f"faithfulness: {f['fraction_unchanged']:.3f} of {f['real_positions']} outputs "
              f"unchanged with everything else patched; metric {f['metric']:.3g}")
        keys = rec.result.circuit_keys(g)
        if keys:
            print("  " + ", ".join(keys))
    top = [(k, v) for k, v in rec.result.ranking(g)
           if g.structural[g.edge_index(k)]][:10]
    print("top edges: " + ", ".join(f"{k} ({v:.3g})" for k, v in top))
    if args.output:
        print(f"wrote {args.output}")
    return 0
