"""The gateway's configuration file (``workbench gateway --config FILE``): TOML, read with
the standard library's tomllib, so a site keeps its AE titles, ports, allowed calling AEs
and signing key in one reviewed file rather than in a service unit's command line.

Only reading and checking live here (no argparse): the command line merges what the file
says with its own options (an option given explicitly wins) and applies the defaults
last. Every problem is a :class:`ConfigError` of one line naming the file and the key
("gateway.toml: gateway.port: ..."), so whoever edits the file at night need not guess.

A passphrase is never read from this file: a ``passphrase`` key anywhere in it is refused,
because a configuration file is copied, backed up and put in version control, and a key's
secret would travel with it. The file may name a ``passphrase_file`` instead.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .server import Peer

PASSPHRASE_REFUSED = ("a passphrase is never kept in the configuration; use passphrase_file "
                      "or $WORKBENCH_KEY_PASSPHRASE")
# key names refused wherever they appear (password: the same mistake under another name)
_SECRET_KEYS = frozenset({"passphrase", "password"})


class ConfigError(ValueError):
    """A problem with the configuration file, in one line naming the file and the key."""


@dataclass(frozen=True)
class FileSettings:
    """What the file says, under the command line's option names; None where the file
    says nothing (then the command line or the default decides). Paths are absolute."""

    path: Path
    ae_title: str | None = None
    host: str | None = None
    port: int | None = None
    spool: Path | None = None
    ledger: Path | None = None
    retry: float | None = None
    allow: list[str] | None = None
    pacs: Peer | None = None
    key: str | None = None  # a fingerprint (prefix)
    passphrase_file: Path | None = None


class _Bad(Exception):
    """A value's problem; load() adds the file and the key."""


# --- value checks (shared with the command line's options) ---------------------------------
def ae_title_problem(text: str) -> str | None:
    """Why ``text`` is not an AE title (PS3.5 VR AE: 1 to 16 characters of the default
    repertoire, no backslash, no control characters), else None. Leading or trailing
    spaces are refused too: DICOM ignores them, so a peer would match "CT01 " as "CT01"
    while our allow list would not."""
    if not text.strip():
        return "an AE title is 1 to 16 characters, not empty or only spaces"
    if len(text) > 16:
        return f"{text!r} is {len(text)} characters long; an AE title has at most 16"
    odd = [c for c in text if not (" " <= c <= "~") or c == "\\"]
    if odd:
        return f"{text!r}: an AE title is printable ASCII without a backslash (not {odd[0]!r})"
    if text != text.strip():
        return f"{text!r} has leading or trailing spaces, which DICOM ignores; remove them"
    return None


def port_problem(value: object) -> str | None:
    """Why ``value`` is not a TCP port, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return f"{value!r} is not a port: a whole number from 1 to 65535"
    return None


def _ae(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string (an AE title), not {_kind(value)}")
    problem = ae_title_problem(value)
    if problem:
        raise _Bad(problem)
    return value


def _port(value: Any) -> int:
    problem = port_problem(value)
    if problem:
        raise _Bad(problem)
    return int(value)


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise _Bad(f"must be a host name or address, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    # TOML has no separate integer-or-float type: 5 and 5.0 are both fine; true is not
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise _Bad(f"must be a number of seconds above 0, not {value!r}")
    return float(value)


def _allow(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad('must be a list of AE title strings, e.g. ["CT01", "CR02"]')
    if not value:
        raise _Bad("is empty: name the calling AE titles allowed to send "
                   "(anything else is refused)")
    for i, title in enumerate(value):
        problem = ae_title_problem(title)
        if problem:
            raise _Bad(f"item {i + 1}: {problem}")
    return list(value)


def _fingerprint(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]+", value):
        raise _Bad(f"must be a key fingerprint (hex digits, as 'workbench keys list' shows), "
                   f"not {value!r}")
    return value


def _path_in(base: Path) -> Callable[[Any], Path]:
    """Paths relative to the file's folder: the file and its spool move together, and the
    gateway's working directory (a service manager's choice) does not matter."""

    def check(value: Any) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise _Bad(f"must be a path (a string), not {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    return check


# section -> key -> (FileSettings field, check); pacs's three keys make one Peer
def _schema(base: Path) -> dict[str, dict[str, tuple[str, Callable[[Any], Any]]]]:
    path = _path_in(base)
    return {
        "gateway": {"ae_title": ("ae_title", _ae), "host": ("host", _host),
                    "port": ("port", _port), "spool": ("spool", path),
                    "ledger": ("ledger", path), "retry_seconds": ("retry", _seconds),
                    "allow": ("allow", _allow)},
        "pacs": {"ae_title": ("ae_title", _ae), "host": ("host", _host),
                 "port": ("port", _port)},
        "key": {"fingerprint": ("key", _fingerprint), "passphrase_file": ("passphrase_file",
                                                                           path)},
    }


# --- reading -------------------------------------------------------------------------------
def load(path: str | Path) -> FileSettings:
    """Read and check the configuration file; raises ConfigError (one line) on any
    problem: unreadable, not TOML, a passphrase, an unknown section or key, a bad value."""
    path = Path(path)
    data = _parse(path)
    _refuse_secrets(path, data, "")
    schema = _schema(path.absolute().parent)
    values: dict[str, Any] = {}
    for name, table in data.items():
        if name not in schema:
            raise ConfigError(f"{path}: {_unknown_section(name, table, schema)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name}: must be a table (a [{name}] section)")
        for key, value in table.items():
            if key not in schema[name]:
                raise ConfigError(f"{path}: {name}.{key}: {_unknown_key(key, name, schema)}")
            field_name, check = schema[name][key]
            try:
                checked = check(value)
            except _Bad as exc:
                raise ConfigError(f"{path}: {name}.{key}: {exc}") from None
            values[f"pacs.{field_name}" if name == "pacs" else field_name] = checked
    if "pacs" in data:
        missing = [k for k in ("ae_title", "host", "port") if f"pacs.{k}" not in values]
        if missing:
            raise ConfigError(f"{path}: pacs.{missing[0]}: missing ([pacs] needs ae_title, "
                              f"host and port)")
        values["pacs"] = Peer(values.pop("pacs.ae_title"), values.pop("pacs.host"),
                              values.pop("pacs.port"))
    return FileSettings(path=path, **values)


def _parse(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: "
                          f"{exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {_syntax_error(str(exc))}") from None


def _syntax_error(message: str) -> str:
    """tomllib's "Invalid value (at line 2, column 5)" as "line 2: ... (column 5)", the
    line first as a compiler would say it."""
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if m:
        return f"line {m[1]}: not valid TOML: {message[:m.start()]} (column {m[2]})"
    m = re.search(r"\s*\(at end of document\)$", message)
    if m:
        return f"at the end of the file: not valid TOML: {message[:m.start()]}"
    return f"not valid TOML: {message}"


def _refuse_secrets(path: Path, node: Any, where: str) -> None:
    """A passphrase key anywhere (any section, known or not, nested or in an array of
    tables) is refused before anything else is said, and its value is never echoed."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else key
            if key.lower() in _SECRET_KEYS:
                raise ConfigError(f"{path}: {here}: {PASSPHRASE_REFUSED}")
            _refuse_secrets(path, value, here)
    elif isinstance(node, list):
        for item in node:
            _refuse_secrets(path, item, where)


def _unknown_section(name: str, value: Any, schema: dict[str, dict[str, Any]]) -> str:
    if not isinstance(value, dict):  # a key above every section
        home = [s for s in schema if name in schema[s]]
        hint = f" (put it under [{home[0]}])" if home else ""
        return f"{name}: a key outside any section{hint}; the sections are " + \
            ", ".join(f"[{s}]" for s in schema)
    return f"[{name}]: unknown section{_did_you_mean(name, list(schema), '[', ']')}"


def _unknown_key(key: str, section: str, schema: dict[str, dict[str, Any]]) -> str:
    hint = _did_you_mean(key, list(schema[section]))
    if not hint:  # a known key in the wrong section: say where it goes
        home = [s for s in schema if key in schema[s]]
        hint = f" (it belongs in [{home[0]}])" if home else ""
    return f"unknown key{hint}"


def _did_you_mean(word: str, choices: list[str], before: str = "", after: str = "") -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {before}{close[0]}{after}?)" if close else ""


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
