"""Subcommands of the ``rasplab`` command line, one module each.

A module here (its name not starting with ``_``) defines ``register(subparsers)``: it adds
its parser with ``subparsers.add_parser(...)`` and sets ``func`` with
``parser.set_defaults(func=run)``; ``run(args)`` returns the exit status. A command whose
last positional takes any number of words may also set ``extra_positionals="<dest>"``:
words left over after its options (``run P --trace 1 2 3``) are appended there. Shared pieces
(the PROGRAM argument, printing JSON) are in :mod:`._common`. Keep module-level imports
free of JAX: import it inside ``run`` where a model is executed.
"""
