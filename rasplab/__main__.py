"""``python -m rasplab``: the same as the ``rasplab`` console script."""

import sys

from .cli import main

sys.exit(main())
