"""Circuit recovery side by side: rasplab's methods and auto-circuit's, on the same models.

For each program: compile it, export it to TransformerLens (``rasplab.export``), sample
one dataset (clean inputs and their paired corrupted inputs, ``ground_truth.sample_dataset``)
and run ACDC (9 thresholds 10^-10..10^-2), EAP and subnetwork probing under resample
ablation with rasplab (``analysis.recover.Session``). Then auto-circuit 1.0.1 runs the same
three methods on the exported model and the same inputs in its own venv
(``benchmarks/autocircuit_side.py``, set up by ``bash benchmarks/setup_autocircuit.sh``).

Both sides' edge scores are compared on auto-circuit's graph: its single "resid start"
node is our ``embed`` and ``pos`` together (an edge's score there is the larger of the two,
and it is in the truth if either is), heads' q/k/v inputs and MLPs map one to one through
the export sidecar's hook names, and edges of the zero-padded heads/MLPs (outside every
circuit) are left out. Reported: wall time of each method on each side and their ratio,
edge ROC AUC against rasplab's verified resample-ablation truth for both, and whether the
two find the same circuit (ACDC: per threshold; EAP/SP: the same top-|truth| edges and the
rank correlation of the scores).

    .venv/bin/python benchmarks/recovery.py                        # writes results/recovery.json
    .venv/bin/python benchmarks/recovery.py --programs reverse --sp-steps 50
    .venv/bin/python benchmarks/recovery.py --markdown              # print the RESULTS.md table
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAMS = ("reverse", "frac_prevs", "hist", "sort_unique")
METHODS = ("acdc", "eap", "sp")
AC_PYTHON = REPO / ".autocircuit-venv" / "bin" / "python"


def ac_key(key: str) -> str:
    """Our edge key at auto-circuit's granularity (embed and pos are one source)."""
    src, dst = key.split("->")
    return f"{'resid_start' if src in ('embed', 'pos') else src}->{dst}"


def rasplab_side(programs, samples: int, seed: int, sp_steps: int, work: Path) -> dict:
    from rasplab.analysis.ground_truth import sample_dataset
    from rasplab.analysis.recover import Session
    from rasplab.compiler.model_file import encode_value
    from rasplab.programs import registry

    from rasplab.export import save_transformer_lens

    session = Session(samples=samples, seed=seed)
    out = {}
    for name in programs:
        spec = registry.get(name)
        p = session.program(spec)
        p.compiled.meta.setdefault("name", name)
        clean, corrupted = sample_dataset(spec, samples, seed)
        assert clean == p.clean and corrupted == p.corrupted
        if any(len(a) != len(b) for a, b in zip(clean, corrupted)):
            raise SystemExit(f"{name}: corrupted inputs change lengths; auto-circuit patches "
                             "per position and needs equal padding")
        d = work / name
        save_transformer_lens(p.compiled, d)
        (d / "inputs.json").write_text(json.dumps({
            "clean": [[encode_value(t) for t in s] for s in clean],
            "corrupted": [[encode_value(t) for t in s] for s in corrupted]}))
        rec = {"methods": {}}
        t0 = time.perf_counter()
        truth = session.truth(name, "resample")
        rec["truth_seconds"] = time.perf_counter() - t0
        rec["truth"] = list(truth.keys)
        rec["graph_edges"] = len(session.experiment(name, "resample").graph.edge_keys)
        for method in METHODS:
            opts = {"steps": sp_steps} if method == "sp" else None
            t0 = time.perf_counter()
            r = session.run(name, method, "resample", options=opts)
            wall = time.perf_counter() - t0
            # again, JAX's compiled functions now cached (the first run includes XLA
            # compiling them; a session running many programs of one shape pays it once)
            warm = session.run(name, method, "resample", options=opts).result.seconds
            g = r.experiment.graph
            rec["methods"][method] = {
                "seconds": warm, "cold_seconds": r.result.seconds, "wall_seconds": wall,
                "edge_auc": r.scores.get("edge_auc"),
                "scores": {k: float(s) for k, s in zip(g.edge_keys, r.result.edge_scores)},
                "circuit": r.result.circuit_keys(g),
                "acdc_masks": ({str(tau): [g.edge_keys[i] for i in np.flatnonzero(m)]
                                for tau, m in zip(r.result.info["thresholds"],
                                                  r.result.info["masks"])}
                               if method == "acdc" else None),
            }
            print(f"rasplab {name} {method}: {r.result.seconds:.2f} s cold, {warm:.2f} s warm, "
                  f"edge AUC "
                  f"{r.scores.get('edge_auc')}", file=sys.stderr, flush=True)
        out[name] = rec
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    from rasplab.analysis.scoring import _average_ranks

    return _average_ranks(np.asarray(x, np.float64))


def compare(ours: dict, theirs: dict) -> dict:
    """Per program and method: AUCs on auto-circuit's graph, time ratio, agreement."""
    from rasplab.analysis.scoring import roc_auc

    table = {}
    for name, rec in ours.items():
        ac = theirs.get(name)
        if ac is None:
            continue
        truth = {ac_key(k) for k in rec["truth"]}
        keys = sorted(set(ac["edges"]))
        labels = np.array([k in truth for k in keys])
        rows = {}
        for method in METHODS:
            mine, other = rec["methods"][method], ac["methods"].get(method)
            if other is None:
                continue
            agg: dict[str, float] = {}
            for k, s in mine["scores"].items():
                agg[ac_key(k)] = max(agg.get(ac_key(k), -np.inf), s)
            a = np.array([agg.get(k, 0.0) for k in keys])
            b = np.array([other["scores"].get(k, 0.0) for k in keys], np.float64)
            top = np.abs(b[np.isfinite(b)]).max(initial=0.0) + 1.0  # ACDC: kept at every tau
            b_finite = np.where(np.isinf(b), top, b)
            n = int(labels.sum())
            top_a = set(np.array(keys)[np.argsort(-a, kind="stable")[:n]])
            top_b = set(np.array(keys)[np.argsort(-b_finite, kind="stable")[:n]])
            row = {
                "rasplab_seconds": mine["seconds"], "rasplab_cold_seconds": mine["cold_seconds"],
                "autocircuit_seconds": other["seconds"],
                "speedup": other["seconds"] / mine["seconds"] if mine["seconds"] else None,
                "rasplab_auc": roc_auc(a, labels), "autocircuit_auc": roc_auc(b_finite, labels),
                "rasplab_auc_own_graph": mine["edge_auc"],
                "same_top_edges": top_a == top_b,
                "rank_correlation": float(np.corrcoef(_ranks(a), _ranks(b_finite))[0, 1])
                if a.std() and b_finite.std() else None,
                "edges": len(keys), "truth_edges": n,
            }
            if method == "acdc":
                same = []
                for tau, kept in mine["acdc_masks"].items():
                    ours_set = {ac_key(k) for k in kept} & set(keys)
                    theirs_set = {k for k in keys if other["scores"].get(k, 0.0) > float(tau)}
                    same.append({"threshold": float(tau), "same": ours_set == theirs_set,
                                 "rasplab_size": len(ours_set),
                                 "autocircuit_size": len(theirs_set)})
                row["per_threshold"] = same
            rows[method] = row
        table[name] = rows
    return table


def markdown(result: dict) -> str:
    lines = [
        "| program | method | rasplab s (cold) | auto-circuit s | speedup (cold) | edge AUC "
        "rasplab / auto-circuit | same circuit |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name, rows in result["comparison"].items():
        for method, r in rows.items():
            if method == "acdc":
                agree = sum(t["same"] for t in r["per_threshold"])
                same = f"{agree}/{len(r['per_threshold'])} thresholds"
            else:
                corr = r["rank_correlation"]
                same = (f"top-{r['truth_edges']} {'same' if r['same_top_edges'] else 'differ'}"
                        f", rank corr {corr:.2f}" if corr is not None else "n/a")
            speed = f"{r['speedup']:.1f}x" if r["speedup"] else "n/a"
            cold = r["autocircuit_seconds"] / r["rasplab_cold_seconds"]
            lines.append(
                f"| {name} | {method} | {r['rasplab_seconds']:.2f} "
                f"({r['rasplab_cold_seconds']:.2f}) | "
                f"{r['autocircuit_seconds']:.2f} | {speed} ({cold:.1f}x) | "
                f"{r['rasplab_auc']:.3f} / "
                f"{r['autocircuit_auc']:.3f} | {same} |")
    return "\n".join(lines)


RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
KEPT_START, KEPT_END = "<!-- recovery.py -->", "<!-- /recovery.py -->"


def results_section(result: dict) -> str:
    m = result["meta"]
    return "\n".join([
        KEPT_START,
        "## Circuit recovery: rasplab vs auto-circuit on the same exported models",
        "",
        f"Written by `benchmarks/recovery.py` on {m.get('date', 'the date of --out')} "
        f"({m['total_wall_s'] / 60:.1f} min in all); {m['samples']} clean inputs and their "
        f"paired corrupted inputs per program (seed {m['seed']}), resample ablation, SP "
        f"{m['sp_steps']} steps/epochs. auto-circuit "
        f"{m['autocircuit'].get('auto_circuit')} with transformer-lens "
        f"{m['autocircuit'].get('transformer_lens')}, torch {m['autocircuit'].get('torch')}, "
        "on the model `rasplab export` wrote; rasplab on its own JAX engine. Times are each "
        "method's own call; rasplab's first figure is a second run in the same process (JAX's "
        "compiled functions cached), the one in brackets the first run (XLA compiling "
        "included). Edge AUC on auto-circuit's graph against rasplab's verified "
        "resample-ablation truth (embed and pos merged into auto-circuit's resid start; "
        "zero-padded heads/MLPs left out). ACDC 'same circuit': thresholds of the 9 where "
        "the two circuits are identical. auto-circuit's ACDC metric is torch's `mse_loss` "
        "(mean over every position, BOS and PAD included, and every logit), rasplab's the "
        "squared distance averaged over real positions, so one threshold is not the same "
        "cut on both sides.",
        "",
        markdown(result),
        KEPT_END,
    ])


def write_results_md(result: dict, path: Path = RESULTS_MD) -> None:
    """Put (or replace) the recovery section in RESULTS.md, keeping everything else."""
    old = path.read_text() if path.exists() else ""
    start, end = old.find(KEPT_START), old.find(KEPT_END)
    section = results_section(result)
    if start >= 0 and end > start:
        new = old[:start] + section + old[end + len(KEPT_END):]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", default=",".join(DEFAULT_PROGRAMS))
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sp-steps", type=int, default=100,
                    help="subnetwork-probing steps (rasplab) and epochs (auto-circuit)")
    ap.add_argument("--work", default=str(REPO / "results" / "recovery"))
    ap.add_argument("--out", default=str(REPO / "results" / "recovery.json"))
    ap.add_argument("--markdown", action="store_true", help="print the table of --out")
    ap.add_argument("--write-results", action="store_true",
                    help="put the table of --out into benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.markdown or args.write_results:
        result = json.loads(Path(args.out).read_text())
        print(markdown(result))
        if args.write_results:
            write_results_md(result)
        return 0
    if not AC_PYTHON.exists():
        print("recovery: run `bash benchmarks/setup_autocircuit.sh` first", file=sys.stderr)
        return 2
    programs = [p for p in args.programs.split(",") if p]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ours = rasplab_side(programs, args.samples, args.seed, args.sp_steps, work)
    side_out = work / "autocircuit.json"
    cmd = [str(AC_PYTHON), str(REPO / "benchmarks" / "autocircuit_side.py"), "--work",
           str(work), "--programs", ",".join(programs), "--epochs", str(args.sp_steps),
           "--out", str(side_out)]
    subprocess.run(cmd, check=True)
    theirs = json.loads(side_out.read_text())
    result = {
        "meta": {"programs": programs, "samples": args.samples, "seed": args.seed,
                 "sp_steps": args.sp_steps, "ablation": "resample",
                 "machine": platform.platform(), "python": platform.python_version(),
                 "autocircuit": theirs.get("meta", {}),
                 "total_wall_s": time.perf_counter() - t0,
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
        "rasplab": ours,
        "autocircuit": {k: v for k, v in theirs.items() if k != "meta"},
    }
    result["comparison"] = compare(ours, result["autocircuit"])
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(markdown(result))
    if args.out == ap.get_default("out"):
        write_results_md(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
