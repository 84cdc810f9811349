"""Generate or check the published protocol files of a dataset.

Usage::

    python -m hashbench.data generate mirflickr25k [--data-root PATH] [--protocol NAME] [--output PATH]

The split is drawn from the recipe in ``datasets/<dataset>.toml``. An existing file with the same
split hash is left unchanged (exit status 0). One with a different split is never overwritten
(exit status 1).
"""

import argparse
import logging
import sys

from hashbench.data.dataset import DatasetError
from hashbench.data.protocol import generate_protocol_file


def main(argv=None):
    """Run the command line and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m hashbench.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate a protocol file from its recipe")
    generate.add_argument("dataset", help="registered dataset name, for example mirflickr25k")
    generate.add_argument(
        "--data-root", default=None, help="folder that contains the dataset folder (default: $HASHBENCH_DATA, else ./data)"
    )
    generate.add_argument("--protocol", default=None, help="protocol name (default: the standard protocol)")
    generate.add_argument("--output", default=None, help="write here instead of the file named in the definition")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        protocol, path, written = generate_protocol_file(
            args.dataset, args.data_root, protocol=args.protocol, output=args.output
        )
    except (DatasetError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    state = "written" if written else "unchanged, identical split"
    print(f"{path}: {protocol.name} v{protocol.version}, split hash {protocol.split_hash} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
