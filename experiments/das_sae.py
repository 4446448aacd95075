"""DAS and SAEs against the planted variables: the tracr library programs (compiled and
rotated), plus a compressed small program for the SAE, into results/das.md, results/sae.md
and PNGs. Resumable: each (method, program, rung) cell is a line of
results/das_sae_cells.jsonl, skipped when present.

    nice .venv/bin/python experiments/das_sae.py [--programs a,b] [--rungs compiled,rotated]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent.parent / "results"
CELLS = RESULTS / "das_sae_cells.jsonl"
#: tracr library programs, smallest first (the full list is tagged "tracr-lib")
ORDER = ["frac_prevs", "length", "hist", "shift_by_1", "shift_by_2", "count_a", "reverse",
         "detect_pattern_aba", "detect_pattern_abc", "sort_unique", "pair_balance",
         "count_less_freq_2", "position_checksum", "sort", "sort_freq", "shuffle_dyck",
         "shuffle_dyck2"]


def _done() -> set[tuple]:
    if not CELLS.exists():
        return set()
    return {(r["method"], r["program"], r["rung"]) for r in map(json.loads, CELLS.open())}


def _model(name: str, rung: str, seed: int):
    from rasplab.compiler import compile_program

    from rasplab import programs, variants

    spec = programs.get(name)
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    if rung == "compressed":  # cached as a model file: compressing takes minutes
        from rasplab.compiler import model_file
        from rasplab.variants.compressed import make_variant

        path = RESULTS / "das_sae_models" / f"{name}_compressed_{seed}.safetensors"
        if path.exists():
            return spec, model_file.load(path)
        model = make_variant(c, seed=seed, d="auto", spec=spec, progress=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        model_file.save(model, path)
        return spec, model
    return spec, variants.make(rung, c, seed=seed)


def run_cell(method: str, name: str, rung: str, samples: int, seed: int) -> dict:
    from rasplab.analysis import features
    from rasplab.analysis.features import das, sae

    spec, model = _model(name, rung, seed)
    truth = features.feature_truth(model, spec.sample_clean(seed, samples),
                                   program=spec.build())
    t = time.perf_counter()
    rep = (das.run if method == "das" else sae.run)(model, truth, seed=seed)
    out = rep.to_json()
    out.update(method=method, program=name, rung=rung, d_model=model.config.d_model,
               wall_s=time.perf_counter() - t)
    if method == "sae":  # the |cos| heat map of one site, and the transcoders
        site = rep.variables[-1].site if rep.variables else None
        if site is not None:
            true, names, _ = sae.site_features(truth, site)
            acts = features.activations(model, truth, site)
            cfg = sae.SAEConfig(width=true.shape[1], k=1)
            d = sae.train(acts, None, cfg, seed=seed)
            cos = sae.abs_cosines(d.atoms, true)
            m = sae.match(cos)
            out["heatmap"] = {"site": site, "labels": [f"{a}:{b}" for a, b in names],
                              "cos": cos[:, list(m.found)].round(3).tolist()}
        out["transcoders"] = [{"layer": layer, "mcc": s.mcc, "f1": s.f1, "nmse": s.nmse,
                               "dead": s.dead, "width": s.width}
                              for layer, s in sae.run_transcoders(model, truth, seed=seed)]
    return out


def _fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec) if isinstance(x, float) else str(x)


def write_reports(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    das_rows = [r for r in rows if r["method"] == "das"]
    sae_rows = [r for r in rows if r["method"] == "sae"]
    lines = ["# DAS against the planted variables",
             "",
             "Written by `experiments/das_sae.py` (seed 0, 512 sampled inputs, same-length "
             "pairs: 256 to train, 256 held out; 200 Adam steps per fit, k by bisection). "
             "IIA: held-out interchange-intervention accuracy of the learned subspace at "
             "the variable's write site. Overlap: ||P_learned P_true||²_F / k with the "
             "planted basis. Dormant: share of the learned span constant on the data. "
             "Random: a random k-dim subspace. Padded: the true variation V plus k dormant "
             "directions; tilted45: V cos 45° + D sin 45° (both constructed, the "
             "dormant-direction test). Not identifiable: the variable never differs "
             "between same-length pairs (indices, length-only variables).", "",
             "| program | rung | variable | site | k | IIA | overlap | read overlap | unread "
             "| dormant | random IIA / overlap | padded IIA / overlap "
             "| tilted45 IIA / overlap | flag |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    tot = {"cells": 0, "ident": 0, "iia1": 0, "ov99": 0, "both": 0, "rov99": 0}
    for r in das_rows:
        for v in r["variables"]:
            s = v
            if not s.get("identifiable"):
                lines.append(f"| {r['program']} | {r['rung']} | {v['name']} | `{v['site']}` "
                             "| - | - | - | - | - | - | - | - | - | not identifiable |")
                tot["cells"] += 1
                continue
            tot["cells"] += 1
            tot["ident"] += 1
            tot["iia1"] += (s["iia"] or 0) >= 1.0
            tot["ov99"] += (s["overlap"] or 0) >= 0.99
            tot["both"] += (s["iia"] or 0) >= 1.0 and (s["overlap"] or 0) >= 0.99
            tot["rov99"] += (s.get("read_overlap") or 0) >= 0.99
            flag = "illusion" if s.get("illusion") else ""
            lines.append(
                f"| {r['program']} | {r['rung']} | {v['name']} | `{v['site']}` | {s['k']} "
                f"| {_fmt(s['iia'])} | {_fmt(s['overlap'])} | {_fmt(s.get('read_overlap'))} "
                f"| {_fmt(s.get('unread_fraction'))} | {_fmt(s['dormant_fraction'])} "
                f"| {_fmt(s['random_iia'])} / {_fmt(s['random_overlap'])} "
                f"| {_fmt(s.get('padded_iia'))} / {_fmt(s.get('padded_overlap'))} "
                f"| {_fmt(s.get('tilted45_iia'))} / {_fmt(s.get('tilted45_overlap'))} "
                f"| {flag} |")
    lines[3:3] = [f"Cells: {tot['cells']}, identifiable {tot['ident']}; IIA 1.0: "
                  f"{tot['iia1']}; overlap ≥ 0.99: {tot['ov99']}; both: {tot['both']}; read "
                  f"overlap ≥ 0.99: {tot['rov99']}.", ""]
    secs = sum(r.get("wall_s", 0) for r in das_rows)
    lines += ["", f"DAS wall time over these cells: {secs:.0f} s."]
    (RESULTS / "das.md").write_text("\n".join(lines) + "\n")

    lines = ["# Sparse autoencoders and transcoders against the planted variables", "",
             "Written by `experiments/das_sae.py` (seed 0, 512 inputs, ReLU+L1 SAE per "
             "residual site, width = the number of true (variable, value) directions "
             "there, 3000 Adam steps). MCC: mean |cos| of a Hungarian matching of atoms "
             "to true directions (per variable: over its values); centred: against "
             "e_j - mean of the variable's value directions; F1: the matched atom active "
             "exactly where the variable takes that value; random: a random dictionary of "
             "the same width.", "",
             "| program | rung | variable | site | MCC | centred | F1 | mean max cos | "
             "random MCC | neuron MCC (site) | dead | NMSE |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sae_rows:
        for v in r["variables"]:
            lines.append(
                f"| {r['program']} | {r['rung']} | {v['name']} | `{v['site']}` "
                f"| {_fmt(v['mcc'])} | {_fmt(v.get('mcc_centred'))} | {_fmt(v['f1'])} "
                f"| {_fmt(v['mean_max_cos'])} | {_fmt(v['random_mcc'])} "
                f"| {_fmt(v.get('neuron_mcc'))} | {v['dead']} "
                f"| {_fmt(v['nmse'])} |")
    lines += ["", "## Per program and rung (means over cells)", "",
              "| program | rung | MCC | centred | F1 | random MCC | neuron MCC | "
              "transcoder MCC | transcoder F1 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sae_rows:
        vs = r["variables"]

        def mean(key, vs=vs):
            xs = [v[key] for v in vs if v.get(key) is not None]
            return float(np.mean(xs)) if xs else None
        tc = r.get("transcoders", [])
        lines.append(f"| {r['program']} | {r['rung']} | {_fmt(mean('mcc'))} "
                     f"| {_fmt(mean('mcc_centred'))} | {_fmt(mean('f1'))} "
                     f"| {_fmt(mean('random_mcc'))} | {_fmt(mean('neuron_mcc'))} "
                     f"| {_fmt(float(np.mean([t['mcc'] for t in tc])) if tc else None)} "
                     f"| {_fmt(float(np.mean([t['f1'] for t in tc])) if tc else None)} |")
    (RESULTS / "sae.md").write_text("\n".join(lines) + "\n")
    for r in sae_rows:
        hm = r.get("heatmap")
        if not hm or r["program"] not in ("hist", "frac_prevs", "reverse"):
            continue
        cos = np.asarray(hm["cos"])
        fig, ax = plt.subplots(figsize=(1 + 0.4 * cos.shape[1], 1 + 0.3 * cos.shape[0]))
        im = ax.imshow(cos, vmin=0, vmax=1, cmap="viridis")
        ax.set_yticks(range(len(hm["labels"])), hm["labels"], fontsize=7)
        ax.set_xlabel("matched atom")
        ax.set_title(f"{r['program']} ({r['rung']}) {hm['site']}: |cos| atom vs true", fontsize=8)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        fig.savefig(RESULTS / f"sae_{r['program']}_{r['rung']}_cos.png", dpi=110)
        plt.close(fig)


DORMANT_CASES = [("frac_prevs", "frac_prevs"), ("reverse", "reverse"), ("sort", "sort"),
                 ("hist", "hist"), ("sort_unique", "sort")]


def dormant_curves(seed: int = 0) -> None:
    """The dormant-direction test swept: IIA against overlap for the padded and tilted
    constructions (results/das_dormant.md, results/das_dormant.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rasplab.analysis.features import das
    from rasplab.compiler.interchange import as_compiled

    lines = ["# The dormant-direction test (Makelov et al. 2023) on compiled models", "",
             "Written by `experiments/das_sae.py --dormant`. V: the part of the variable's "
             "planted span that varies on the data at its write site (m dimensions). D: "
             "directions outside its span along which the site is constant on the data "
             "(least read by later weights first). Padded: V plus j dormant directions "
             "(k = m + j). Tilted t: V cos t + D sin t (k = m; overlap cos² t). 256 "
             "same-length pairs from the program's sampler.", "",
             "| program | variable | site | m | dormant available | construction | "
             "parameter | k | overlap | IIA |", "|---|---|---|---:|---:|---|---:|---:|---:|---:|"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, var in DORMANT_CASES:
        spec, model = _model(name, "compiled", seed)
        prog = as_compiled(spec.build(), spec.vocab, spec.max_seq_len)
        bases = spec.sample_clean(seed + 10, 256)
        sources = spec.sample_corrupted(seed + 11, bases)
        t = das.dormant_test(model, prog, var, bases, sources,
                             tilts=tuple(range(0, 91, 10)), pads=(1, 2, 4, 8))
        for p in t.points:
            lines.append(f"| {name} | {var} | `{t.site}` | {t.m} | {t.dormant_available} "
                         f"| {p.construction} | {p.parameter:g} | {p.k} | {p.overlap:.3f} "
                         f"| {p.iia:.3f} |")
        tilt = [p for p in t.points if p.construction == "tilted"]
        ax.plot([p.overlap for p in tilt], [p.iia for p in tilt], "o-",
                label=f"{name}:{var} tilted")
        pad = [p for p in t.points if p.construction == "padded"]
        ax.plot([p.overlap for p in pad], [p.iia for p in pad], "s--", alpha=0.6,
                label=f"{name}:{var} padded")
    ax.set_xlabel("overlap with the planted basis")
    ax.set_ylabel("IIA")
    ax.set_title("IIA vs overlap: subspaces mixing V with dormant directions", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(RESULTS / "das_dormant.png", dpi=110)
    (RESULTS / "das_dormant.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--programs", default=",".join(ORDER))
    ap.add_argument("--rungs", default="compiled,rotated")
    ap.add_argument("--methods", default="das,sae")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--dormant", action="store_true", help="only the dormant-direction sweep")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.dormant:
        dormant_curves(args.seed)
        return
    todo = [(m, p, r) for p in args.programs.split(",") for r in args.rungs.split(",")
            for m in args.methods.split(",")]
    done = _done()
    if not args.report_only:
        for cell in tqdm([c for c in todo if c not in done], desc="cells"):
            rec = run_cell(*cell[:3], args.samples, args.seed)
            with CELLS.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            write_reports([json.loads(x) for x in CELLS.open()])
    write_reports([json.loads(x) for x in CELLS.open()] if CELLS.exists() else [])


if __name__ == "__main__":
    main()
