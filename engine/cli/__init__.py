"""The `python -m engine` commands, one module each.

A command module has `HELP` (one line), `add_arguments(parser)` and `run(args)`; `engine/__main__.py`
lists the modules. `run` raises `UserInputError` for bad input (printed as one line, exit code 2) and
prints one JSON object last when `--json` is given.
"""
