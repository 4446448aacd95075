"""Every recovery method on every library program under each ablation, as a resumable sweep.

Each cell (program x rung x method x ablation x seed; ``analysis/scoreboard.py``) is scored
against the ablation-matched planted circuit and the structural one, and stored on its own
(``rasplab.sweep``: one JSON file per cell under ``--store``, default
``<out>/<name>_cells/``) as soon as it is done. An interrupted run keeps every finished
cell; running the same command again does only the missing ones. The reports are then
regenerated from the store:

* ``<out>/<name>.md``: per-method summary, then edge / node AUC per program and ablation,
  edge AUC against the structural circuit, and any failures;
* ``<out>/<name>.json``: every number;
* ``<out>/<name>_edge_auc.png``, ``<out>/<name>_node_auc.png``: heat maps.

    python experiments/scoreboard.py [--programs reverse,hist] [--methods acdc,eap]
        [--ablations zero,mean,resample] [--rungs compiled] [--seeds 0] [--samples 256]
        [--workers 2 | --ray] [--limit N] [--redo-errors] [--report-only] [--out results]

``--workers N`` runs cells on N local processes (default 1: in this process), the biggest
programs' groups first (``analysis.scoreboard.run_order``). ``--ray``, or
the environment variable ``RAY_ADDRESS``, runs them as Ray tasks (``pip install
'rasplab[ray]'``): on the cluster at ``RAY_ADDRESS`` (``ray://head:10001`` or ``auto``),
or without an address on a local Ray bound to 127.0.0.1 with ``--workers`` CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

from rasplab.analysis.scoreboard import group_key, load_records, make_cells, run_cell, run_order

from rasplab.sweep import Store, SweepError, run_sweep


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def build_report(records: list, *, samples: int, seeds: list[int], seconds: float, title: str,
                 missing: int = 0, cpu_seconds: float = 0.0) -> str:
    from rasplab.analysis.recover import markdown_table, summary_table

    errors = [r for r in records if r.error is not None]
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    lines = [
        f"# {title}",
        "",
        f"{samples} sampled inputs per program ({seed_text}); methods run on the complete "
        f"component graph; {len(records)} cells, {seconds:.0f} s of cell time in all"
        + (f" ({cpu_seconds:.0f} s of CPU time)" if cpu_seconds else "")
        + " (summed over cells, each with its worker's set-up of the program: compiling, "
        "sampling, ground truths, JIT). Edge AUC is over the structural "
        "edges against the circuit the same ablation sees on the same inputs; node AUC over "
        "components (n/a: every component is in the target, so there is no negative). "
        "Ties count one half.",
        "",
    ]
    if missing:
        lines += [f"**Incomplete: {missing} cells are not in the store yet** (rerun to "
                  "finish them).", ""]
    lines += [
        "## Summary (means over programs where defined)",
        "",
        summary_table(records),
        "",
        "## Edge AUC / node AUC vs the ablation-matched circuit",
        "",
        markdown_table(records),
        "",
        "## Edge AUC vs the structural circuit (complete graph) / I/O-node AUC vs matched",
        "",
        markdown_table(records, key="edge_auc_structural", second="io_node_auc"),
        "",
    ]
    if errors:
        lines += ["## Failures", ""]
        lines += [f"- {e.label} / {e.ablation} / {e.method}: {e.error}" for e in errors]
        lines.append("")
    return "\n".join(lines)


def write_reports(records: list, out: Path, name: str, *, samples: int, seeds: list[int],
                  missing: int = 0, title: str = "Circuit-recovery scoreboard") -> str:
    """``<name>.md``, ``<name>.json`` and the two heat maps, from stored records only."""
    from rasplab.analysis.recover import plain, plot_scoreboard

    out.mkdir(parents=True, exist_ok=True)
    seconds = sum(r.wall_seconds for r in records)
    text = build_report(records, samples=samples, seeds=seeds, seconds=seconds, title=title,
                        missing=missing, cpu_seconds=sum(r.cpu_seconds for r in records))
    (out / f"{name}.md").write_text(text)
    rows = plain([r.to_dict() for r in records])
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    if any(r.scores is not None for r in records):
        plot_scoreboard(records, out / f"{name}_edge_auc.png", key="edge_auc")
        plot_scoreboard(records, out / f"{name}_node_auc.png", key="node_auc")
    rungs = list(dict.fromkeys(r.cell.rung for r in records))
    if len(rungs) > 1:  # the ladder: a section, a PNG per rung and one across them
        text = _ladder_reports(records, rungs, out, name, text)
    return text


def _ladder_reports(records: list, rungs: list[str], out: Path, name: str, text: str) -> str:
    from rasplab.analysis.ladder import ladder_markdown, models_markdown, plot_ladder
    from rasplab.analysis.recover import plot_scoreboard

    text = text.rstrip("\n") + "\n\n" + models_markdown(records) + "\n" \
        + ladder_markdown(records) + "\n"
    pngs = []
    for rung in rungs:
        sub = [r for r in records if r.cell.rung == rung and r.scores is not None]
        if sub:
            path = out / f"{name}_{rung}_edge_auc.png"
            plot_scoreboard(sub, path, key="edge_auc", title=f"{rung} rung: edge AUC")
            pngs.append(path.name)
    if any(r.scores is not None for r in records):
        plot_ladder(records, out / f"{name}_ladder.png")
        pngs.append(f"{name}_ladder.png")
    text += "\n" + " ".join(f"![{p}]({p})" for p in pngs) + "\n"
    (out / f"{name}.md").write_text(text)
    return text


def _variant_cache(args, out: Path, cells: list):
    """The disk cache of the trained rungs' models, when a cell needs one (else None)."""
    from rasplab.ladder import NOT_STORED, RungOptions, VariantCache

    if all(c.rung in NOT_STORED for c in cells):
        return None
    options = RungOptions(compress=args.compress, compress_steps=args.compress_steps,
                          retrain_steps=args.retrain_steps)
    return VariantCache(str(args.models or out / f"{args.name}_models"), options,
                        shipped=tuple(args.shipped))


def _drop_stale(store: Store, cells: list, variants) -> None:
    """Forget stored cells whose model was built from other options or another program
    source than asked for now (they are run again, on the right model)."""
    from rasplab.programs import registry

    from rasplab.ladder import NOT_STORED

    keys: dict[tuple, str] = {}
    stale = 0
    for c in cells:
        if c.rung in NOT_STORED or (result := store.get(c)) is None or "error" in result:
            continue
        k = (c.program, c.rung, c.seed)
        if k not in keys:
            keys[k] = variants.expected_key(registry.get(c.program), c.rung, c.seed)
        if (result.get("model") or {}).get("key") != keys[k]:
            store.delete(c)
            stale += 1
    if stale:
        print(f"scoreboard: {stale} stored cells were scored on a model built with other "
              "options (or another shipped file); running them again", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", help="comma-separated library names (default: all)")
    ap.add_argument("--methods", help="comma-separated (default: every method)")
    ap.add_argument("--ablations", default="zero,mean,resample")
    ap.add_argument("--rungs", default="compiled", help="comma-separated rungs (default compiled)")
    ap.add_argument("--models", help="where the trained rungs' models are kept, one file per "
                    "(program, rung, seed) (default <out>/<name>_models)")
    ap.add_argument("--compress", type=float, default=0.5,
                    help="compressed rung: d as a fraction of the compiled d_model (default 0.5)")
    ap.add_argument("--compress-steps", type=int, help="compressed rung: at most N steps")
    ap.add_argument("--retrain-steps", type=int, help="retrained rung: N training steps")
    ap.add_argument("--shipped", metavar="DIR", action="append", default=[],
                    help="use the pre-trained files in DIR (<program>.<rung>.safetensors, "
                    "e.g. models/demo) as they are, before training anything")
    ap.add_argument("--corruptions", default="same-length",
                    help="comma-separated corruption distributions for resample ablation "
                    "(same-length, any-length, counterfactual:VAR; default same-length)")
    ap.add_argument("--truth", choices=("network", "program"), default="network",
                    help="resample's target: the network's greedy truth or the "
                    "program-derived one (analysis/program_truth.py; default network)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--seed", type=int, help="one seed (same as --seeds N)")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--out", default="results")
    ap.add_argument("--name", default="scoreboard", help="file name stem (default scoreboard)")
    ap.add_argument("--store", help="cell store folder (default <out>/<name>_cells)")
    ap.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    ap.add_argument("--ray", action="store_true",
                    help="run cells as Ray tasks (cluster at $RAY_ADDRESS, else a local Ray)")
    ap.add_argument("--limit", type=int, help="run at most N missing cells, then report")
    ap.add_argument("--redo-errors", action="store_true", help="rerun cells stored with an error")
    ap.add_argument("--report-only", action="store_true",
                    help="regenerate the reports from the store; run nothing")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no table on stdout")
    args = ap.parse_args(argv)

    from rasplab.analysis.methods import METHODS
    from rasplab.programs import registry
    from rasplab.variants import get_rung

    try:
        programs = _csv(args.programs) or registry.program_names()
        for p in programs:
            registry.get(p)  # unknown names fail before any work
        for r in _csv(args.rungs):
            get_rung(r)
        methods = _csv(args.methods) or list(METHODS)
        seeds = [args.seed] if args.seed is not None else [int(s) for s in _csv(args.seeds)]
        from rasplab.programs.corruptions import check_name

        corruptions = [check_name(c) for c in _csv(args.corruptions)]
        cells = make_cells(programs, _csv(args.rungs), methods, _csv(args.ablations), seeds,
                           args.samples, corruptions, args.truth)
    except (KeyError, ValueError) as err:
        print(f"scoreboard: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    store = Store(args.store or out / f"{args.name}_cells")
    try:
        variants = _variant_cache(args, out, cells)
    except ValueError as err:
        print(f"scoreboard: error: {err}", file=sys.stderr)
        return 2
    if variants is not None and not args.report_only:
        _drop_stale(store, cells, variants)
    if args.redo_errors:
        for r in load_records(store, cells):
            if r.error is not None:
                store.delete(r.cell)
    status = 0
    if not args.report_only:
        try:
            parallel = args.workers > 1 or args.ray or os.environ.get("RAY_ADDRESS")
            fn = run_cell if variants is None else partial(run_cell, variants=variants)
            report = run_sweep(fn, run_order(cells) if parallel else cells, store,
                               workers=args.workers,
                               ray=True if args.ray else None, group_by=group_key,
                               limit=args.limit, progress=not args.quiet, desc="scoreboard")
            print(f"scoreboard: {report.ran} cells run ({report.executor}, "
                  f"{report.workers} workers, {report.seconds:.1f} s), {report.already} "
                  f"already stored, {report.total} in all", file=sys.stderr)
        except SweepError as err:
            print(f"scoreboard: error: {err}", file=sys.stderr)
            status = 1
    records = load_records(store, cells)
    title = "Circuit-recovery scoreboard" + (
        " (resample scored against the program-derived truth)" if args.truth == "program"
        else "")
    text = write_reports(records, out, args.name, samples=args.samples, seeds=seeds,
                         missing=len(cells) - len(records), title=title)
    if not args.quiet:
        print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
