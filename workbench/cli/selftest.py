"""``workbench selftest [--no-torch]`` (the frozen app's ``--smoke``): this installation
checked end to end; the steps themselves live in ``workbench.selftest``."""

from __future__ import annotations

import argparse


def cmd_selftest(args: argparse.Namespace) -> int:
    from ..selftest import run_selftest

    return run_selftest(torch_steps=not args.no_torch)


def _selftest_arguments(p: argparse.ArgumentParser) -> None:
    from .. import selftest

    p.description = (selftest.__doc__ or "").split("\n")[0]
    p.add_argument("--no-torch", action="store_true", help="skip the model steps")
    p.set_defaults(handler=cmd_selftest)


ARGUMENTS = {"selftest": _selftest_arguments}
