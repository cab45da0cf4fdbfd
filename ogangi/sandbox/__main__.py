"""``python -m ogangi.sandbox --port 8765``: see ``ogangi.sandbox.cli``."""

from __future__ import annotations

from ogangi.sandbox.cli import main

main()
