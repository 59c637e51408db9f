"""``python -m connectors.dev.fake_aws [moto server arguments]``: moto's server, patched.

``FAKE_AWS_REQUEST_LOG=0`` leaves out werkzeug's line per request (its warnings and errors stay):
a caller that discards the server's output (``LocalDynamoDB(quiet=True)``) has it skip formatting
and writing a line per call under the log handler's lock.
"""

import logging
import os
import sys

from . import apply_patches


def main() -> None:
    apply_patches()
    if os.environ.get("FAKE_AWS_REQUEST_LOG", "").strip().lower() in ("0", "false", "no"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from .state_events import start_from_environment

    start_from_environment()  # FAKE_AWS_EVENTS: jobs' state-change events on EventBridge
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
