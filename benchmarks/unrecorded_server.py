"""``hearing-server`` exactly as shipped, but with the recorder left out (the "recording off" scenarios).

The server has no option to run hearings unrecorded (courts record every hearing), so the
benchmark builds the same application and removes only its recording factory before it
starts: signaling, the live room and the media plane are unchanged.

    python -m benchmarks.unrecorded_server serve --plain-http --host 127.0.0.1 --port 8080
"""

from __future__ import annotations

from aiohttp import web

import hearing_server.web.app
from hearing_server.cli import main
from hearing_server.config import Config
from hearing_server.web.ws import RECORDING_FACTORY

_create_app = hearing_server.web.app.create_app


def create_unrecorded_app(config: Config) -> web.Application:
    """The server's application without a recorder for its live hearings."""
    app = _create_app(config)
    del app[RECORDING_FACTORY]
    return app


if __name__ == "__main__":
    hearing_server.web.app.create_app = create_unrecorded_app  # the CLI imports it when serving
    raise SystemExit(main())
