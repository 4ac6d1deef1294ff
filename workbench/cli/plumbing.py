"""What every command shares: exit codes, the error type and how errors print, the key
passphrase, the progress bar, JSON lines, and turning paths and NAME=VALUE items into
inputs.

Exit codes: 0 all good, 1 some file failed (verification, signing, an attack), 2 usage or
I/O error, 130 interrupted. An error the user can act on prints one line naming the file
and the problem, never a traceback.

Nothing here imports torch or Qt, and the error types of the subsystems are imported only
once an error happens, so ``workbench info`` pays for none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A usage or I/O problem: printed on one line, exit status 2."""


def print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def print_json_line(obj: Any) -> None:
    """One JSON object per line (``--json``), so scripts can read results as they come."""
    print(json.dumps(obj))


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors every command reports in one line; imported only once something failed."""
    from ..imaging.errors import ImageLoadError
    from ..models.card import ModelLoadError
    from ..provenance.records.keys import KeyStoreError
    from ..provenance.records.record import RecordError

    return CommandError, KeyStoreError, RecordError, ImageLoadError, ModelLoadError


def run_handler(args: argparse.Namespace,
                family_errors: Callable[[], tuple[type[Exception], ...]] = tuple) -> int:
    """Run ``args.handler``: problems the user can act on print one line and exit 2."""
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away ('workbench info --json | head -1'): not an error of ours;
        # point stdout at nothing so that Python's exit flush does not raise again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if isinstance(exc, (*_user_errors(), *family_errors())):
            print_error(str(exc))
            return EXIT_USAGE
        if isinstance(exc, OSError):
            print_error(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}"
                        .lstrip(": "))
            return EXIT_USAGE
        raise


def passphrase(args: argparse.Namespace, *, confirm: bool = False) -> str:
    """The key passphrase from $WORKBENCH_KEY_PASSPHRASE, --passphrase-file, or a prompt;
    never from a plain argument (it would show in ``ps`` and shell history)."""
    from ..provenance.records.keys import PASSPHRASE_ENV, passphrase_from_env_or_file

    pfile = getattr(args, "passphrase_file", None)
    if pfile:
        import stat

        with contextlib.suppress(OSError):
            mode = os.stat(pfile).st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                print_error(f"warning: the passphrase file {pfile} is readable by others "
                            f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 "
                            f"{pfile}")
    try:
        value = passphrase_from_env_or_file(pfile)
    except OSError as exc:
        raise CommandError(f"cannot read the passphrase file: {exc.strerror or exc}") from None
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError(f"no passphrase: set {PASSPHRASE_ENV} or use --passphrase-file")
    value = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != value:
        raise CommandError("the passphrases differ")
    return value


def image_files(paths: list[str]) -> list[Path]:
    """Files and folders (recursive) as image files; a missing path is a usage error."""
    from ..imaging.loader import find_images

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise CommandError(f"{p}: no such file or folder")
        files.extend(find_images(p) if p.is_dir() else [p])
    if not files:
        raise CommandError("no images found in the given paths")
    return files


def say(message: str) -> None:
    """What a slow step is doing, at once, for someone watching a terminal (importing
    torch and a model takes seconds with nothing on the screen otherwise). Only on a
    terminal: in a log or a pipe, stderr keeps to results and one-line errors."""
    if getattr(sys.stderr, "isatty", lambda: False)():
        print(message, file=sys.stderr, flush=True)


def load_model_on(name: str, device: str) -> Any:
    """A model (``demo``, ``demo-surrogate`` or a card) on ``--device``; torch loads here."""
    say(f"loading the model {name}…")
    from ..models.device import choose_device
    from ..models.zoo import load_model

    try:
        dev = choose_device(device)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return load_model(name, dev)


def param_values(items: list[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` items as a dict (the plugin's validator checks the values)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


class ProgressBar:
    """A terminal progress bar with ETA on stderr (no dependency, so headless servers and
    the frozen app need nothing more)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def update(self, done: int, total: int, item: str = "") -> None:
        now = time.monotonic()
        final = done >= total
        # Redraw at most 10 times a second on a terminal; in logs, one line per 10 %.
        if self.interactive and not final and now - self._last < 0.1:
            return
        if not self.interactive and not final and (done * 10 // max(total, 1)) == (
                (done - 1) * 10 // max(total, 1)):
            return
        self._last = now
        frac = done / total if total else 1.0
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * self.width)
        line = (f"{self.label} [{bar:<{self.width}}] {done}/{total} "
                f"{frac * 100:3.0f}% ETA {eta:4.0f}s {item[:40]}")
        if self.interactive:
            self.stream.write("\r" + line.ljust(110))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
