"""The command table: one row per command, naming the family module that declares its
arguments and runs it.

Only the family of the command being run is imported, and only its parser is built, so
``workbench info`` or ``workbench verify`` never import the attack modules (nor torch).
A family module provides ``ARGUMENTS``: command name -> a function that adds the
command's arguments to its parser and sets ``handler``; and, optionally,
``user_errors()``: the family's own error types that print as one line (imported only
when an error happens).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from .plumbing import run_handler


@dataclass(frozen=True)
class Command:
    name: str
    family: str  # module in workbench.cli
    help: str  # one line
    synopsis: str  # how ``workbench --help`` shows it


COMMANDS: tuple[Command, ...] = (
    Command("info", "images", "print what each image file is, without a GUI",
            "info FILE..."),
    Command("keys", "provenance", "signing keys and the trust store",
            "keys new|list|trust|untrust|export"),
    Command("sign", "provenance", "sign images (files or folders, recursive; resumable)",
            "sign PATH..."),
    Command("verify", "provenance", "verify images against their capture records",
            "verify PATH..."),
    Command("ledger", "provenance", "the tamper-evident ledger of records",
            "ledger verify|proof|export|head|check-proof"),
    Command("plugins", "attacks", "list attack plugins and their status", "plugins"),
    Command("predict", "attacks", "classify images with a model", "predict INPUT..."),
    Command("attack", "attacks", "run an attack plugin and save adversarial images",
            "attack --plugin P INPUT... --out DIR"),
    Command("detect", "detection", "run detectors on images (table or JSON lines)",
            "detect PATH..."),
    Command("calibrate", "detection", "threshold a detector on clean images at a set FPR",
            "calibrate --detector D --clean DIR"),
    Command("report", "report", "case report (HTML or PDF) of images",
            "report IMAGE... --out F.html|F.pdf"),
    Command("evaluate", "evaluation",
            "attacks and detectors over a labelled dataset (Table 1 metrics)",
            "evaluate --data DIR --out RUN_DIR"),
    Command("certs", "certs", "X.509 certificates for DICOM and C2PA signatures",
            "certs new|import|list|trust|export"),
    Command("plugin", "plugin_kit", "make a new plugin from a template, or check one",
            "plugin new NAME --kind attack|detector | plugin check FILE"),
    Command("gateway", "gateway", "signing DICOM gateway: sign at capture, forward to PACS",
            "gateway --port N --pacs AE@HOST:PORT --allow AE"),
    Command("pacs", "pacs", "query a PACS (DICOMweb) and retrieve series into a folder",
            "pacs find|get --url URL"),
    Command("evidence", "evidence",
            "a perturbation as DICOM (Parametric Map, Segmentation) and a report as "
            "Encapsulated PDF, optionally stored to the PACS",
            "evidence ORIGINAL SUSPECT --out DIR"),
    Command("harden", "harden", "fine-tune a model with a defence (PGD training, colour "
            "and rotation variation) and measure it against its parent",
            "harden --model M --defence pgd|augment --data DIR --out DIR"),
    Command("sweep", "sweep",
            "accuracy and false negatives over colour, rotation, shift, brightness, JPEG",
            "sweep --data DIR --out DIR"),
    Command("study", "study", "blinded reader study: build one, or score the readers' answers",
            "study new --data DIR --attacks A,B --out STUDY_DIR | study score STUDY_DIR"),
    Command("selftest", "selftest", "check this installation end to end",
            "selftest [--no-torch]"),
)

ALIASES = {"--smoke": "selftest"}  # the frozen app's spelling of the self test


def find_command(word: str) -> Command | None:
    """The command ``word`` names (or an alias of it), else None (the GUI's arguments)."""
    name = ALIASES.get(word, word)
    return next((c for c in COMMANDS if c.name == name), None)


def synopsis() -> str:
    """All commands on one line, for the epilog of ``workbench --help``."""
    return "commands (each with -h): " + " | ".join(c.synopsis for c in COMMANDS)


def build_parser(command: Command) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one command (and its family module), importing only that family."""
    family = importlib.import_module(f"{__package__}.{command.family}")
    parser = argparse.ArgumentParser(prog="workbench")
    sub = parser.add_subparsers(dest="command", required=True)
    family.ARGUMENTS[command.name](sub.add_parser(command.name, help=command.help))
    return parser, family


def run_command(command: Command, argv: Sequence[str]) -> int:
    """Parse ``argv`` (the words after the command's name) and run the command."""
    parser, family = build_parser(command)
    args = parser.parse_args([command.name, *argv])
    return run_handler(args, getattr(family, "user_errors", tuple))
