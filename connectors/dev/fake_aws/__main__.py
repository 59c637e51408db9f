"""``python -m connectors.dev.fake_aws [moto server arguments]``: moto's server, patched."""

import sys

from . import apply_patches


def main() -> None:
    apply_patches()
    from .state_events import start_from_environment

    start_from_environment()  # FAKE_AWS_EVENTS: jobs' state-change events on EventBridge
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
