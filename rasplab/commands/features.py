"""``rasplab features PROGRAM --method probe|dla|sae|das``: a feature-level method scored
against the planted variables.

Samples ``--samples`` inputs, builds the feature truth (each variable's basis, where it is
present and used, the interpreter's labels per position) and runs the method on the model
(``--rung`` turns a compiled program into a variant first). Prints one row per (variable,
site) with the truth and the method's scores; ``--json`` prints the report
(``variables``: ``name``, ``site``, ``present``, ``used`` and the scores), ``-o FILE.png``
draws a variable x site heat map of the method's main score (DLA: its components and the
logit lens).
"""

from __future__ import annotations

import argparse

from ..inputs import UsageError
from ._common import add_program_arguments, positive_int, print_json, target_from_args

ORDER = 75
METHODS = ("probe", "dla", "sae", "das")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features", help="score a feature method (probes, DLA, SAEs, DAS) against the "
        "planted variables",
        description="Run a feature-level interpretability method on a compiled program (or "
        "a variant, or a saved model) and score it against the variables the compiler "
        "planted: linear probes with a control task (accuracy, selectivity), logit lens and "
        "direct logit attribution (against the components that write the output), sparse "
        "autoencoders (mcc, f1) and distributed alignment search (iia, overlap). Every "
        "score says whether the variable is present at that site and used downstream.",
    )
    add_program_arguments(p)
    p.add_argument("--method", required=True, metavar="METHOD",
                   help=f"the method: {', '.join(METHODS)}")
    p.add_argument("--site", metavar="NAME",
                   help="only this residual site (e.g. blocks.1.hook_resid_post)")
    p.add_argument("--variable", metavar="V", help="only this program variable")
    p.add_argument("--rung", metavar="RUNG", default="compiled",
                   help="the realism-ladder rung to analyse: compiled (default), rotated, "
                   "compressed (trains a compression first: tens of seconds)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for sampling, the variant and the method (default 0)")
    p.add_argument("--samples", type=positive_int, default=128, metavar="N",
                   help="inputs to sample (default 128)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", "--output", metavar="FILE.png", help="draw the scores here")
    p.set_defaults(func=run)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise UsageError(f"--method {method!r}: unknown feature method; use one of "
                         f"{', '.join(METHODS)}")
    return method


def _model(target, args):
    from ..variants import RUNGS, make

    if args.rung not in RUNGS:
        raise UsageError(f"--rung {args.rung!r}: unknown rung; use one of {', '.join(RUNGS)}")
    compiled = target.compile(causal=args.causal)
    if args.rung == "compiled":
        return compiled
    if target.kind == "model":
        raise UsageError(f"{target.name} is a saved model; --rung makes a variant of a "
                         "program: pass the program (or save the variant with "
                         "`rasplab variant` and pass that file)")
    options = {"spec": target.spec} if args.rung == "compressed" else {}
    try:
        return make(args.rung, compiled, seed=args.seed, **options)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _check_cell(model, args) -> None:
    from ..analysis.features.truth import residual_sites

    sites = residual_sites(model)
    if args.site is not None and args.site not in sites:
        raise UsageError(f"--site {args.site!r}: no such residual site; the sites are "
                         f"{', '.join(sites) or '(none: the model has no layers)'}")
    variables = list(model.planted.variables)
    if args.variable is not None and args.variable not in variables:
        raise UsageError(f"--variable {args.variable!r}: no such variable; the variables "
                         f"are {', '.join(variables)}")
    if args.method == "dla" and args.variable not in (None, model.planted.output):
        raise UsageError(f"--variable {args.variable}: dla reads the output variable "
                         f"{model.planted.output!r}; leave out --variable")
    if not sites:
        raise UsageError("the model has no layers, so no residual site to analyse")


def run(args: argparse.Namespace) -> int:
    method = _check_method(args.method)
    target = target_from_args(args)
    model = _model(target, args)
    _check_cell(model, args)
    sampler = target.sampler()
    inputs = sampler.sample_clean(args.seed, args.samples)

    from ..analysis import features

    try:
        truth = features.feature_truth(model, inputs, program=target.program)
        report = features.run(method, model, truth, site=args.site, variable=args.variable,
                              seed=args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.output:
        from ..analysis.features.plots import plot_report

        plot_report(report, args.output)
    if args.json:
        data = report.to_json()
        data["labels_from"] = truth.labels_from
        if args.output:
            data["png"] = str(args.output)
        print_json(data)
        return 0
    exact = "exact" if report.is_exact else (
        f"approximate, held-out accuracy {report.model_accuracy:.3f}"
        if report.model_accuracy is not None else "approximate")
    print(f"{report.program}: {method} on the {report.rung} model ({exact}), "
          f"{report.samples} inputs (seed {report.seed}), labels from the "
          f"{truth.labels_from}")
    print(report.table())
    if report.components:
        print("components (direct logit attribution; * = planted output writer):")
        for c in report.components:
            mark = "*" if c.writes_output else " "
            print(f"  {mark} {c.name:10s} dla {c.scores.get('dla', float('nan')):.4g}  "
                  f"share {c.scores.get('dla_share', float('nan')):.3f}")
    if report.summary:
        print("summary: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in report.summary.items()))
    for note in report.notes:
        print(f"note: {note}")
    if args.output:
        print(f"wrote {args.output}")
    return 0
