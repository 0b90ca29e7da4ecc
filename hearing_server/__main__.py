"""Allows ``python -m hearing_server``."""

from hearing_server.cli import main

raise SystemExit(main())
