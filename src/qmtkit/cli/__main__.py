"""``python -m qmtkit.cli``: the same as the ``qmtkit`` console command."""

from __future__ import annotations

import sys

from qmtkit.cli import main

sys.exit(main())
