"""``rasplab list [--family F ...] [--tag TAG ...] [--json]``: the program library."""

from __future__ import annotations

import argparse

from ..inputs import UsageError
from ._common import print_json, show_value

ORDER = 10


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "list", help="the program library",
        description="List the library's programs with their families, descriptions, "
        "vocabularies, lengths and tags.",
    )
    p.add_argument("--family", action="append", default=[], metavar="FAMILY",
                   help="only programs of this family (repeat to allow several)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="only programs with this tag (repeat to require several)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..programs import FAMILY_DESCRIPTIONS, TAG_DESCRIPTIONS, registry

    try:
        specs = registry.filter_programs(args.tag or None, family=args.family or None)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print_json([spec.to_dict() for spec in specs])
        return 0
    if not specs:
        wanted = [f"family {' or '.join(args.family)}"] if args.family else []
        wanted += [f"all of the tags {', '.join(args.tag)}"] if args.tag else []
        print(f"no program has {' and '.join(wanted)}")
        return 0
    width = max(len(s.name) for s in specs)
    fwidth = max(len(s.family) for s in specs)
    for spec in specs:
        vocab = " ".join(show_value(v) for v in spec.vocab)
        lengths = (f"{spec.min_len}-{spec.max_seq_len}" if spec.min_len != spec.max_seq_len
                   else str(spec.max_seq_len))
        print(f"{spec.name.ljust(width)}  {spec.family.ljust(fwidth)}  {spec.description}")
        print(f"{'':{width}}  {'':{fwidth}}  vocab {{{vocab}}}, length {lengths}; "
              f"tags: {', '.join(sorted(spec.tags))}")
    families = sorted(f for f in FAMILY_DESCRIPTIONS if f != "user")
    print(f"\n{len(specs)} programs. Families: {', '.join(families)}. "
          f"Tags: {', '.join(sorted(TAG_DESCRIPTIONS))}")
    return 0
