"""The program-derived truth against the network's greedy one, per program and distribution.

For every program x corruption distribution (resample ablation: the only one with a
program-level meaning), on the same (clean, corrupted) pairs: the network truth
(``analysis.ground_truth.effective_circuit``: greedy pruning of the network, reverse
topological) and the program-derived truth (``analysis.program_truth.derive``: minimal
program edges found in the interpreter, mapped to network edges, constant edges kept where
the network needs them, checked on the network). Writes ``results/program_truth.md`` (and
``.json``): how many cells agree, and every disagreement with its reasons.

One JSON line per finished cell in ``<out>/program_truth.jsonl`` (``--set new``:
``program_truth_new.jsonl``): an interrupted run keeps what it did, a rerun does the rest.

    python experiments/program_truth.py [--set core|new] [--programs reverse,hist]
        [--corruptions same-length,any-length] [--samples 256] [--orders 4] [--out results]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rasplab.analysis import ground_truth as gt
from rasplab.analysis import interventions as iv
from rasplab.analysis import program_truth as pt
from rasplab.compiler import compile_program
from rasplab.programs import catalog, registry
from tqdm.auto import tqdm


def reasons(prog: dict, network: list[str], constant: set[str]) -> list[str]:
    """Why the program-derived truth and the network's differ (empty when they agree)."""
    pset, nset = set(prog["edges"]), set(network)
    if pset == nset:
        return []
    out = []
    if not prog["faithful_before_constants"] or not prog["faithfulness"]["outputs_unchanged"]:
        out.append(f"unfaithful on the network: with everything outside the program truth "
                   f"ablated, {prog['faithfulness']['changed_positions']} output positions "
                   "change (the network needs an edge the interpreter does not)")
    fails = prog["minimality"]["failures"]
    if fails:
        out.append("the network is insensitive to program-truth edges "
                   f"{', '.join(fails)} (the interpreter's output changes when they are "
                   "forced; the network's decoded output does not)")
    only_p = sorted(pset - nset)
    only_n = sorted(nset - pset)
    if prog["ok"] and [k for k in only_n if k not in constant]:
        out.append("another minimal circuit: the program truth is faithful and minimal on the "
                   f"network too, and the greedy search kept {', '.join(only_n)} instead of "
                   f"{', '.join(only_p) or 'nothing'}")
    if not out:
        c_p = [k for k in only_p if k in constant]
        c_n = [k for k in only_n if k in constant]
        out.append("constant edges differ: program side "
                   f"+{', '.join(c_p) or '-'}, network side +{', '.join(c_n) or '-'}")
    return out


def run_cell(spec, compiled, corruption: str, samples: int, seed: int, orders: int) -> dict:
    clean, corrupted = gt.sample_dataset(spec, samples, seed, corruption)
    exp = iv.prepare(compiled, clean, "resample", corrupted=corrupted, corruption=corruption)
    network = gt.effective_circuit(exp, program=spec.name)
    prog = pt.derive(spec, compiled, clean, corrupted, corruption=corruption, exp=exp,
                     orders=orders)
    d = prog.to_dict()
    d["ok"] = prog.ok
    constant = {r.key for r in compiled.planted.edges if r.constant}
    net_keys = network.keys
    why = reasons(d, net_keys, constant)
    return {"program": spec.name, "corruption": corruption, "samples": samples, "seed": seed,
            "agree": not why, "program_truth": d, "network": net_keys,
            "program_only": sorted(set(d["edges"]) - set(net_keys)),
            "network_only": sorted(set(net_keys) - set(d["edges"])), "reasons": why}


def report(recs: list[dict], title: str, args, total: int = 0) -> str:
    ok = [r for r in recs if "error" not in r]
    agree = [r for r in ok if r["agree"]]
    programs = sorted({r["program"] for r in ok}, key=[r["program"] for r in ok].index)
    prog_agree = [p for p in programs if all(r["agree"] for r in ok if r["program"] == p)]
    unique = [r for r in ok if r["program_truth"]["unique"]]
    lines = [
        f"# {title}", "",
        f"Resample ablation, {args.samples} (clean, corrupted) pairs per cell (seed "
        f"{args.seed}), the same pairs for both truths. **Network truth**: greedy pruning "
        "of the network in reverse topological order (`analysis/ground_truth.py`). "
        "**Program truth**: the minimal set of program edges found in the interpreter by "
        "edge-level interchange (`compiler/program_edges.py`), mapped to network edges "
        "through the planted circuit, constant `one`/`bos` edges kept only where the "
        "network needs them given the mapped ones, then verified on the network "
        "(`analysis/program_truth.py`). Zero and mean ablation have no program-level "
        "meaning (a zeroed or averaged categorical code is no value of the variable), so "
        "only resample is derived.", "",
        (f"**Incomplete: {total - len(recs)} of {total} cells not run yet.** "
         if total > len(recs) else "") +
        f"**{len(agree)} of {len(ok)} cells agree** (same network edge set); "
        f"{len(prog_agree)} of {len(programs)} programs agree in every distribution. "
        f"The program truth is faithful and minimal on the network in "
        f"{sum(r['program_truth']['ok'] for r in ok)} of {len(ok)} cells. "
        f"Pruning the program edges in {args.orders} orders found one minimal set in "
        f"{len(unique)} of {len(ok)} cells.", "",
    ]
    bad = [r for r in ok if not r["agree"]]
    if bad:
        lines += ["## Disagreements", "",
                  "| program | corruption | program only | network only | why |",
                  "|---|---|---|---|---|"]
        for r in bad:
            lines.append(f"| {r['program']} | {r['corruption']} | "
                         f"{', '.join(r['program_only']) or '-'} | "
                         f"{', '.join(r['network_only']) or '-'} | "
                         f"{' '.join(r['reasons'])} |")
        lines.append("")
    unreal = [r for r in ok if r["program_truth"]["unrealised"]]
    same_const = sum(1 for r in ok if r["corruption"] == "same-length"
                     and r["program_truth"]["constant"])
    lines += [
        "## How to read it", "",
        "*Program edges with no network carrier* are inputs of a selector whose predicate "
        "ignores that side (`length`'s `Select(tokens, tokens, TRUE)`, `count_a`'s query, "
        "a comparison with a constant): the compiled head reads only `one`/`bos` there. In "
        "the interpreter they matter only under a length-changing corruption, at positions "
        "past the corrupted input's end, where the corrupted value is undefined; in the "
        "network the same information (which positions are real) arrives through the "
        "constant edges, which is why those are kept where the network needs them. "
        f"{len(unreal)} cells have such edges.", "",
        f"Constant edges kept under `same-length`: {same_const} cells (the positions "
        "that are BOS, real or PAD are the same on both inputs, so none is expected).", "",
    ]
    errors = [r for r in recs if "error" in r]
    if errors:
        lines += ["## Errors", ""] + [f"- {r['program']} ({r['corruption']}): {r['error']}"
                                      for r in errors] + [""]
    lines += ["## Every cell", "",
              "| program | corruption | agree | edges (program / network) | constant kept | "
              "program edges with no network carrier | unique program truth |",
              "|---|---|---|---|---|---|---|"]
    for r in ok:
        p = r["program_truth"]
        lines.append(f"| {r['program']} | {r['corruption']} | "
                     f"{'yes' if r['agree'] else 'no'} | {len(p['edges'])} / "
                     f"{len(r['network'])} | {len(p['constant'])} | "
                     f"{', '.join(p['unrealised']) or '-'} | "
                     f"{'yes' if p['unique'] else 'no (' + str(len(p['alternatives'])) + ')'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("core", "new"), default="core",
                    help="core: the 49 core programs; new: the library's other programs")
    ap.add_argument("--programs", help="comma-separated (default: the whole set)")
    ap.add_argument("--corruptions", default="same-length,any-length")
    ap.add_argument("--samples", type=int, default=gt.DEFAULT_SAMPLES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--orders", type=int, default=pt.ORDERS)
    ap.add_argument("--out", default="results")
    ap.add_argument("--report-only", action="store_true",
                    help="write the report from the stored cells; run nothing")
    args = ap.parse_args(argv)
    core = [s.name for s in catalog.core_specs()]
    if args.programs:
        names = args.programs.split(",")
    elif args.set == "core":
        names = core
    else:
        names = [n for n in registry.program_names() if n not in set(core)]
    corruptions = args.corruptions.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "program_truth" if args.set == "core" else "program_truth_new"
    store = out / f"{stem}.jsonl"
    done = {}
    if store.exists():
        for line in store.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["program"], rec["corruption"])] = rec
    todo = [] if args.report_only else [
        (n, c) for n in names for c in corruptions if (n, c) not in done]
    compiled: dict = {}
    with store.open("a") as fh:
        for name, corruption in tqdm(todo, unit="cell", dynamic_ncols=True):
            spec = registry.get(name)
            try:
                if name not in compiled:
                    compiled.clear()
                    compiled[name] = compile_program(spec.build(), spec.vocab,
                                                     spec.max_seq_len)
                rec = run_cell(spec, compiled[name], corruption, args.samples, args.seed,
                               args.orders)
            except Exception as err:  # noqa: BLE001 - recorded in the report
                rec = {"program": name, "corruption": corruption,
                       "error": f"{type(err).__name__}: {' '.join(str(err).split())}"}
            done[(name, corruption)] = rec
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
    recs = [done[(n, c)] for n in names for c in corruptions if (n, c) in done]
    title = ("Program-derived truth vs the network's greedy truth" +
             ("" if args.set == "core" else " (the library's newer programs)"))
    (out / f"{stem}.md").write_text(report(recs, title, args, len(names) * len(corruptions)))
    (out / f"{stem}.json").write_text(json.dumps(recs, indent=1) + "\n")
    print(f"wrote {out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
