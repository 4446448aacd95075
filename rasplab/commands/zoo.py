"""``rasplab zoo build DIR`` / ``rasplab zoo verify DIR``: the model zoo (see rasplab/zoo.py)."""

from __future__ import annotations

import argparse
import sys

from ._common import positive_int

ORDER = 80


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "zoo", help="build or verify a folder of every program's models and circuits",
        description="A model zoo: per program and rung, the model file (safetensors + JSON), "
        "its planted circuit and a manifest with the SHA-256 of every file.",
    )
    sub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="write (or resume writing) the zoo",
                       description="Write DIR/models/RUNG/PROGRAM.{safetensors,json}, "
                       "DIR/circuits/RUNG/PROGRAM.json and DIR/manifest.json. Entries already "
                       "built, unchanged and intact are skipped, so an interrupted build resumes.")
    b.add_argument("dir", metavar="DIR")
    b.add_argument("--rungs", metavar="R,...", help="comma-separated rungs (default: compiled)")
    b.add_argument("--programs", metavar="P,...",
                   help="comma-separated library programs (default: all)")
    b.add_argument("--seed", type=int, default=0, help="seed for rungs that draw (default 0)")
    b.set_defaults(func=run_build)
    v = sub.add_parser("verify", help="recheck every hash and every exact model",
                       description="Recheck the SHA-256 of every file in DIR/manifest.json and "
                       "that each exact model agrees with the interpreter (every input when "
                       "there are at most --exhaustive-limit, else --samples random ones). "
                       "Exit status 1 with one line per failure.")
    v.add_argument("dir", metavar="DIR")
    v.add_argument("--samples", type=positive_int, default=500, metavar="N")
    v.add_argument("--exhaustive-limit", type=positive_int, default=2000, metavar="N")
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(func=run_verify)


def run_build(args: argparse.Namespace) -> int:
    from .. import zoo

    report = zoo.build(args.dir, _csv(args.programs), _csv(args.rungs), seed=args.seed,
                       progress=sys.stderr.isatty())
    print(f"{args.dir}: {len(report.built)} built, {len(report.skipped)} already there")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .. import zoo

    problems = zoo.verify(args.dir, samples=args.samples, exhaustive_limit=args.exhaustive_limit,
                          seed=args.seed, progress=sys.stderr.isatty())
    for line in problems:
        print(line)
    if problems:
        return 1
    n = len(zoo.read_manifest(args.dir))
    print(f"{args.dir}: OK, {n} models: every hash matches, every exact model agrees with the "
          "interpreter")
    return 0
