"""auto-circuit's side of benchmarks/recovery.py (runs in .autocircuit-venv, no rasplab).

Loads each exported model with the export's own loader (``rasplab/export/runtime.py``,
imported by file path: it needs only torch, transformer_lens, safetensors and numpy) and
runs auto-circuit 1.0.1's ACDC (thresholds 10^-10..10^-2, 9 values, MSE faithfulness),
EAP (mask gradients at the clean point, ``mask_val=0``, the gradient of the MSE to the
corrupted output, absolute values) and subnetwork probing (MSE to the clean output,
``--epochs``; auto-circuit ablates with the token-wise mean of the corrupted inputs there)
on the inputs recovery.py wrote. Resample ablation: the corrupted input's source outputs.
Edge scores are written under rasplab's edge names at auto-circuit's granularity
(``resid_start->L3.H0.v``), mapped through the sidecar's hook names.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
import torch.optim.adam  # noqa: F401

# auto-circuit's subnetwork probing reaches torch.optim.adam as an attribute (torch 2.13)
torch.optim.adam = sys.modules["torch.optim.adam"]

REPO = Path(__file__).resolve().parent.parent
THRESHOLD_EXPONENTS = list(range(-10, -1))  # 10^-10 .. 10^-2


def _runtime():
    path = REPO / "rasplab" / "export" / "runtime.py"
    spec = importlib.util.spec_from_file_location("rasplab_export_runtime", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def node_names(sidecar: dict) -> tuple[dict, dict]:
    """(source (hook, head) -> our name, destination (hook, head) -> our receiver key)."""
    srcs, dests = {("blocks.0.hook_resid_pre", None): "resid_start"}, {}
    for c in sidecar["components"]:
        if c["hook"] and c["name"] not in ("embed", "pos"):
            srcs[c["hook"], c["head"]] = c["name"]
        for inp, r in c.get("inputs", {}).items():
            dests[r["hook"], r["head"]] = c["name"] if inp == "in" else f"{c['name']}.{inp}"
    return srcs, dests


def run_program(rt, d: Path, epochs: int) -> dict:
    from auto_circuit.data import PromptDataLoader, PromptDataset
    from auto_circuit.prune_algos.ACDC import acdc_prune_scores
    from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
    from auto_circuit.prune_algos.subnetwork_probing import subnetwork_probing_prune_scores
    from auto_circuit.utils.graph_utils import patchable_model

    exp = rt.load(d)
    data = json.loads((d / "inputs.json").read_text())
    clean_in = [[rt.untag(t) for t in s] for s in data["clean"]]
    corrupt_in = [[rt.untag(t) for t in s] for s in data["corrupted"]]
    width = max(len(s) for s in clean_in + corrupt_in) + 1
    clean, corrupt = exp.encode(clean_in, width), exp.encode(corrupt_in, width)
    model = exp.model
    with torch.no_grad():
        clean_out, corrupt_out = model(clean), model(corrupt)
    pmodel = patchable_model(model, factorized=True, slice_output=None, separate_qkv=True,
                             device=torch.device("cpu"))

    def loader(answers):  # one batch of every input (ACDC uses only the first batch)
        data = PromptDataset(list(clean), list(corrupt), list(answers), list(answers))
        return PromptDataLoader(data, seq_len=None, diverge_idx=0, batch_size=len(clean),
                                shuffle=False)
    srcs, dests = node_names(exp.sidecar)
    padded = set(exp.sidecar["padded"])

    def key(edge) -> str | None:
        s = srcs.get((edge.src.module_name, edge.src.head_idx))
        r = dests.get((edge.dest.module_name, edge.dest.head_idx))
        if s is None or r is None:
            raise KeyError(f"unmapped auto-circuit edge {edge}")
        if s in padded or r.rsplit(".", 1)[0] in padded or r in padded:
            return None
        return f"{s}->{r}"

    def edge_scores(ps) -> dict:
        out = {}
        for e in pmodel.edges:
            k = key(e)
            if k is None:
                continue
            v = ps[e] if e in ps else e.prune_score(ps)
            out[k] = float(v.item() if hasattr(v, "item") else v)
        return out

    res = {"edges": sorted(k for k in (key(e) for e in pmodel.edges) if k), "methods": {}}
    t0 = time.perf_counter()
    ps = acdc_prune_scores(pmodel, loader(clean_out), None, tao_exps=THRESHOLD_EXPONENTS,
                           tao_bases=[1], faithfulness_target="mse")
    res["methods"]["acdc"] = {"seconds": time.perf_counter() - t0, "scores": edge_scores(ps)}
    t0 = time.perf_counter()
    # the MSE to the clean output has zero gradient at the clean point: use the corrupted
    ps = mask_gradient_prune_scores(pmodel, loader(corrupt_out), None, grad_function="logit",
                                    answer_function="mse", mask_val=0.0)
    scores = {k: abs(v) for k, v in edge_scores(ps).items()}
    res["methods"]["eap"] = {"seconds": time.perf_counter() - t0, "scores": scores}
    t0 = time.perf_counter()
    ps = subnetwork_probing_prune_scores(pmodel, loader(clean_out), None, epochs=epochs,
                                         faithfulness_target="mse")
    res["methods"]["sp"] = {"seconds": time.perf_counter() - t0, "scores": edge_scores(ps)}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--programs", required=True)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rt = _runtime()
    import auto_circuit
    import transformer_lens

    out = {"meta": {"torch": torch.__version__,
                    "auto_circuit": getattr(auto_circuit, "__version__", "1.0.1"),
                    "transformer_lens": getattr(transformer_lens, "__version__", "2.4.0"),
                    "epochs": args.epochs}}
    for name in args.programs.split(","):
        out[name] = run_program(rt, Path(args.work) / name, args.epochs)
        times = {m: round(r["seconds"], 2) for m, r in out[name]["methods"].items()}
        print(f"auto-circuit {name}: {times}", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
