#!/usr/bin/env python3
"""Regenerate the small pre-trained variant files shipped for the demo (``models/demo/``).

Training the approximate rungs takes minutes on two cores, longer than a demo should, so
the repository carries their results: for each program, the compressed rung (d = ceil(3/4
D), trained to 99.5% held-out accuracy or ``--compress-steps``) and the retrained rung
(SIIT to 99.5% accuracy, IIA and strict accuracy, or ``--retrain-steps``; its resample
ground truth recomputed and verified). Files::

    models/demo/{program}.{rung}.safetensors + .json    (rasplab.load(path) reads them)
    models/demo/index.json                              (each file's rung and metrics)

Deterministic on CPU: the same arguments write the same weights.

    .venv/bin/python experiments/make_demo_variants.py [--programs hist,frac_prevs,sort_unique]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from rasplab.compiler.model_file import save
from rasplab.variants import compressed as C
from rasplab.variants import retrained as R

from rasplab.demo import DEFAULT_LADDER
from rasplab.inputs import resolve_target

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "demo"


def build(name: str, out: Path, rungs: list[str], *, retrain_steps: int,
          compress_steps: int, progress: bool) -> list[dict]:
    target = resolve_target(name)
    compiled = target.describe(target.compile())
    records = []
    if "compressed" in rungs:
        D = compiled.config.d_model
        d = max(1, math.ceil(0.75 * D))
        t0 = time.perf_counter()
        model = C.make_variant(compiled, d=d, spec=target.spec, steps=compress_steps,
                               stop_at=0.995, progress=progress)
        path = save(model, out / f"{name}.compressed.safetensors")[0]
        info = model.meta["variant"]
        records.append({"program": name, "rung": "compressed", "file": path.name,
                        "d": d, "D": D, "heldout": info["heldout"]["inputs"],
                        "steps": info["steps_done"], "seconds": time.perf_counter() - t0})
    if "retrained" in rungs:
        t0 = time.perf_counter()
        model = R.make_variant(compiled, spec=target.spec, steps=retrain_steps,
                               progress=progress)
        path = save(model, out / f"{name}.retrained.safetensors")[0]
        info = model.meta["variant"]
        m = info["metrics"]
        truth = info.get("truths", {}).get("resample", {})
        records.append({
            "program": name, "rung": "retrained", "file": path.name,
            "accuracy": m["accuracy"], "iia": m["iia"], "strict": m["strict"],
            "reached": info["reached"], "steps": info["steps"],
            "resample_truth": truth.get("retrained"), "compiled_truth": truth.get("compiled"),
            "truth_verified": truth.get("verified"), "seconds": time.perf_counter() - t0})
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default=",".join(DEFAULT_LADDER),
                    help="programs (default: the demo ladder's, the ones shipped)")
    ap.add_argument("--rungs", default="compressed,retrained")
    ap.add_argument("--retrain-steps", type=int, default=3000)
    ap.add_argument("--compress-steps", type=int, default=2000)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"files": []}
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    for name in [n.strip() for n in args.programs.split(",") if n.strip()]:
        for rec in build(name, out, rungs, retrain_steps=args.retrain_steps,
                         compress_steps=args.compress_steps, progress=not args.no_progress):
            print(json.dumps(rec), flush=True)
            index["files"] = [f for f in index["files"] if f["file"] != rec["file"]] + [rec]
            index["files"].sort(key=lambda f: f["file"])
            index_path.write_text(json.dumps(index, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
