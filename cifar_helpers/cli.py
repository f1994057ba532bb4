"""Command line: `python -m cifar_helpers train [--profile ...] [--data ...] [--weights ...] [--out ...]`."""

from __future__ import annotations

import argparse
import os
import sys

from .config import PROFILE_ALIASES, PROFILES, load_config
from .errors import CifarHelpersError


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one clear line (plus exit status 2), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments; every training option overrides the chosen profile."""
    parser = _OneLineParser(prog="python -m cifar_helpers",
                            description="CIFAR-10 transfer learning with ResNet50 in two phases.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    train = commands.add_parser("train", help="run the whole two-phase study and write results")
    train.add_argument("--profile", choices=sorted(PROFILES) + sorted(PROFILE_ALIASES),
                       help="settings preset (default: $CIFAR_PROFILE or 'seed')")
    train.add_argument("--data", help="auto | keras | sample | DIR in the cifar-10-batches-py layout")
    train.add_argument("--weights", help="auto | imagenet | none | PATH to a ResNet50 notop .h5")
    train.add_argument("--out", help="folder for metrics.json, model.keras, figures, report.md")
    for flag, kind, text in (
        ("--epochs-head", int, "phase-1 epochs"), ("--epochs-finetune", int, "phase-2 epochs"),
        ("--batch-size", int, "batch size"), ("--lr-head", float, "phase-1 learning rate"),
        ("--lr-finetune", float, "phase-2 learning rate"),
        ("--train-limit", int, "keep this many training images (0: all)"),
        ("--test-limit", int, "keep this many test images (0: all)"),
        ("--early-stopping-patience", int, "epochs without val_loss improvement (0: off)"),
        ("--seed", int, "random seed"),
    ):
        train.add_argument(flag, type=kind, help=text)
    train.add_argument("--precision",
                       choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
                       help="compute precision; auto picks by hardware (fast profile)")
    train.add_argument("--fast-ops", action=argparse.BooleanOptionalAction,
                       help="1x1 convolutions as matmuls and fused Adam (on in the fast profile)")
    train.add_argument("--feature-cache", action=argparse.BooleanOptionalAction,
                       help="phase 1 on cached base features (on in the fast profile)")
    train.add_argument("--augment", action="store_true", default=None,
                       help="random flip, translation and small rotation while training")
    train.add_argument("--image-size", type=int, help="upsample each batch to this size (e.g. 64)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine", "plateau"),
                       help="learning-rate rule in both phases (default: constant)")
    train.add_argument("--label-smoothing", type=float, help="e.g. 0.1 (default: 0)")
    train.add_argument("--deterministic", action="store_true", default=None,
                       help="enable TensorFlow op determinism (slower)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the study, turn expected failures into one line and exit status 1."""
    args = vars(build_parser().parse_args(argv))
    args.pop("command")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        config = load_config(**args)
        from .config import describe
        from .study import run_study

        print(f"Settings:\n{describe(config)}", flush=True)
        run_study(config, log=lambda text: print(text, flush=True), verbose=2)
    except CifarHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
