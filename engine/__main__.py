"""Command line: `python -m engine COMMAND …` (`python -m engine -h` lists the commands).

    python -m engine train --data digits --model tinyvgg --epochs 10 --seed 0 --json

Each command lives in `engine/cli/<module>.py`. Bad arguments print one line to stderr and exit with
code 2; `--json` prints one JSON object last.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.device import configure_threads
from engine.errors import UserInputError

# command → its module (HELP, add_arguments, run); new commands add a line here
COMMANDS = {
    "datasets": "engine.cli.datasets",
    "models": "engine.cli.models",
    "train": "engine.cli.train",
    "gallery": "engine.cli.gallery",
    "lesion": "engine.cli.lesion",
    "ensemble": "engine.cli.ensemble",
    "tune": "engine.cli.tune",
    "transfer": "engine.cli.transfer",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, like every other bad input
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(commands.add_parser(name, help=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_threads()
    try:
        importlib.import_module(COMMANDS[args.command]).run(args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
