"""``python -m media_worker --fd N``: a media worker on an inherited channel."""

import sys

from media_worker.process import main

sys.exit(main())
