"""Is each library program's minimal faithful circuit unique?

For every program x ablation (zero, mean, resample) x corruption distribution
(same-length, any-length; resample only), prunes the structural circuit in several orders
(``analysis.ground_truth.minimal_circuits``: reverse topological, then seeded random
permutations) and, with ``--necessity``, again without each edge of the found circuit that
is not needed on its own (``alternatives_by_necessity``), verifies every distinct circuit
found, and writes
``results/truth_uniqueness.md`` (and ``.json``): how many (program, ablation, distribution)
cells have one minimal circuit, and the alternatives where there are several.

One JSON line per finished cell in ``results/truth_uniqueness.jsonl``: an interrupted run
keeps what it did, and a rerun does only the missing cells.

    python experiments/truth_uniqueness.py [--programs reverse,hist | --set core]
        [--orders 6] [--necessity] [--samples 128] [--out results]

The cells of an earlier run are read from ``truth_uniqueness.json`` when the ``.jsonl``
is missing (a fresh checkout), so a rerun adds programs instead of redoing them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rasplab.analysis import ground_truth as gt
from rasplab.analysis import interventions as iv
from rasplab.compiler import compile_program
from rasplab.programs import registry
from tqdm.auto import tqdm

CELLS = [("zero", None), ("mean", None), ("resample", "same-length"),
         ("resample", "any-length")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", help="comma-separated (default: the whole library)")
    ap.add_argument("--set", choices=("core", "all"), default="all",
                    help="core: the 49 core programs (programs.catalog.core_specs)")
    ap.add_argument("--necessity", action="store_true",
                    help="also search without each edge of the found circuit")
    ap.add_argument("--orders", type=int, default=6)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results")
    ap.add_argument("--report-only", action="store_true",
                    help="write the report from the stored cells; run nothing")
    args = ap.parse_args(argv)
    if args.programs:
        names = args.programs.split(",")
    elif args.set == "core":
        from rasplab.programs import catalog

        names = [spec.name for spec in catalog.core_specs()]
    else:
        names = registry.program_names()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "truth_uniqueness.jsonl"
    done = {}
    if not store.exists() and (out / "truth_uniqueness.json").exists():
        old = json.loads((out / "truth_uniqueness.json").read_text())
        store.write_text("".join(json.dumps(r) + "\n" for r in old))
    if store.exists():
        for line in store.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["program"], rec["ablation"], rec["corruption"])] = rec
    todo = [] if args.report_only else [
        (n, a, c) for n in names for a, c in CELLS if (n, a, c) not in done]
    compiled: dict = {}
    with store.open("a") as fh:
        for name, ablation, corruption in tqdm(todo, unit="cell", dynamic_ncols=True):
            spec = registry.get(name)
            if name not in compiled:
                compiled[name] = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            try:
                clean, corrupted = gt.sample_dataset(spec, args.samples, args.seed,
                                                     corruption or "same-length")
                exp = iv.prepare(compiled[name], clean, ablation, corrupted=corrupted,
                                 corruption=corruption)
                truth = gt.effective_circuit(exp, orders=args.orders,
                                             necessity=args.necessity)
                rec = {"program": name, "ablation": ablation, "corruption": corruption,
                       "orders": args.orders, "necessity": args.necessity,
                       "samples": args.samples,
                       "unique": truth.unique, "edges": truth.keys,
                       "alternatives": truth.alternative_keys()}
            except Exception as err:  # noqa: BLE001 - recorded in the report
                rec = {"program": name, "ablation": ablation, "corruption": corruption,
                       "error": f"{type(err).__name__}: {err}"}
            done[(name, ablation, corruption)] = rec
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
    recs = [done[(n, a, c)] for n in names for a, c in CELLS if (n, a, c) in done]
    missing = len(names) * len(CELLS) - len(recs)
    ok = [r for r in recs if "error" not in r]
    programs = {r["program"] for r in ok}
    all_unique = {p for p in programs if all(x["unique"] for x in ok if x["program"] == p)}
    lines = ["# Is the minimal faithful circuit unique?", "",
             f"Pruning in {args.orders} orders per cell (reverse topological, then seeded "
             f"random permutations), {args.samples} clean inputs, seed {args.seed}; every "
             "distinct circuit found is verified (faithful and minimal). One circuit found "
             "is evidence of uniqueness, not a proof.", "",
             (f"**Incomplete: {missing} of {len(names) * len(CELLS)} cells not run yet.** "
              if missing else "") +
             f"**{sum(r['unique'] for r in ok)} of {len(ok)} cells have a unique minimal "
             f"circuit**; {len(all_unique)} of {len(programs)} programs are unique in every "
             "cell run. Programs marked * were also searched without each edge of the "
             "found circuit that is not needed on its own (`alternatives_by_necessity`).", "",
             "| program | ablation | corruption | unique | edges | alternatives |",
             "|---|---|---|---|---|---|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['ablation']} | {r['corruption'] or '-'} | "
                         f"error: {r['error'][:80]} | | |")
            continue
        alts = "" if r["unique"] else "; ".join(
            "{" + ", ".join(a) + "}" for a in r["alternatives"])
        star = "*" if r.get("necessity") else ""
        lines.append(f"| {r['program']}{star} | {r['ablation']} | {r['corruption'] or '-'} | "
                     f"{'yes' if r['unique'] else 'no'} | {len(r['edges'])} | {alts} |")
    (out / "truth_uniqueness.md").write_text("\n".join(lines) + "\n")
    (out / "truth_uniqueness.json").write_text(json.dumps(recs, indent=1) + "\n")
    print(f"wrote {out / 'truth_uniqueness.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
