"""Command line: `python -m cifar_helpers train [--profile NAME] [--SETTING VALUE ...]`,
and `python -m cifar_helpers compare RUN_DIR...` for a table of finished runs."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import NoReturn

from .config import PROFILE_ALIASES, PROFILES, Config, field_types, load_config
from .errors import CifarHelpersError


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one clear line (plus exit status 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Exit 2 with argparse's message and a pointer to --help."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_setting_flags(train: argparse.ArgumentParser) -> None:
    """One flag per Config field, typed and restricted as declared; None means 'not given'."""
    types = field_types()
    for item in fields(Config):
        flag, text = "--" + item.name.replace("_", "-"), item.metadata["help"].replace("%", "%%")
        if item.name == "profile":
            train.add_argument(flag, dest="profile", default=None,
                               choices=sorted(PROFILES) + sorted(PROFILE_ALIASES),
                               help=f"{text} (default: $CIFAR_PROFILE or 'seed')")
        elif types[item.name] is bool:
            train.add_argument(flag, dest=item.name, default=None, help=text,
                               action=argparse.BooleanOptionalAction)
        else:
            train.add_argument(flag, dest=item.name, default=None, type=types[item.name],
                               choices=item.metadata["choices"] or None, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments; every training option overrides the chosen profile."""
    parser = _OneLineParser(prog="python -m cifar_helpers",
                            description="CIFAR-10 transfer learning with ResNet50 in two phases.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    train = commands.add_parser(
        "train", help="run the whole two-phase study and write results",
        description="Run the two-phase study. Each flag overrides the profile and $CIFAR_* "
                    "settings; the settings in effect (profile defaults included) are printed "
                    "when the run starts.")
    _add_setting_flags(train)
    compare = commands.add_parser(
        "compare", help="table of finished runs: accuracy, time, settings that differ",
        description="Compare finished runs (folders holding metrics.json): test and best "
                    "validation accuracy, epochs, seconds per epoch of each phase, total time, "
                    "and only the settings whose values differ between the runs.")
    compare.add_argument("folders", nargs="+", metavar="RUN_DIR", help="a run folder")
    return parser


def train(settings: dict) -> None:
    """The `train` command: build the configuration, print it, run (or resume) the study."""
    from .config import describe
    from .devices import split_cpu
    from .study import run_study

    split_cpu()  # CIFAR_LOGICAL_CPUS: only possible before TensorFlow starts
    config = load_config(**settings)
    print(f"Settings:\n{describe(config)}", flush=True)
    run_study(config, log=lambda text: print(text, flush=True))


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the study, turn expected failures into one line and exit status 1."""
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if command == "compare":
            from .compare import compare_folders

            print(compare_folders(args["folders"]))
        else:
            train(args)
    except CifarHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
