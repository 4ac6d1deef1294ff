"""The gateway's configuration file (workbench/gateway/config_file.py) and how the command
line merges it: every value read and checked, relative paths taken from the file's
folder, one-line errors naming the file and the key, a passphrase refused, an explicit
option winning over the file. No network and no DCMTK: these run everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli.commands import build_parser, find_command
from workbench.cli.gateway import settings
from workbench.cli.plumbing import CommandError
from workbench.gateway.config_file import ConfigError, load
from workbench.gateway.server import Peer

FULL = """\
[gateway]
ae_title = "WB_GATEWAY"
host = "0.0.0.0"
port = 11113
spool = "/var/lib/workbench/spool"
ledger = "/var/lib/workbench/ledger.db"
retry_seconds = 2
allow = ["MODALITY", "CT_SCANNER"]

[pacs]
ae_title = "ORTHANC"
host = "pacs.example.org"
port = 4242

[key]
fingerprint = "ab12"
passphrase_file = "/etc/workbench/passphrase"
"""


def _write(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _at(path: Path, text: str) -> str:
    """A pattern for a message that starts with the file's name, then ``text``."""
    return f"^{re.escape(str(path))}: {re.escape(text)}"


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message[len(f"{path}: "):]


def test_a_full_file_gives_every_value(tmp_path: Path) -> None:
    got = load(_write(tmp_path, FULL))
    assert (got.ae_title, got.host, got.port) == ("WB_GATEWAY", "0.0.0.0", 11113)
    assert got.spool == Path("/var/lib/workbench/spool")
    assert got.ledger == Path("/var/lib/workbench/ledger.db")
    assert got.retry == 2.0 and isinstance(got.retry, float)
    assert got.allow == ["MODALITY", "CT_SCANNER"]
    assert got.pacs == Peer("ORTHANC", "pacs.example.org", 4242)
    assert got.key == "ab12"
    assert got.passphrase_file == Path("/etc/workbench/passphrase")


def test_an_empty_file_says_nothing(tmp_path: Path) -> None:
    got = load(_write(tmp_path, ""))
    assert got.port is None and got.pacs is None and got.allow is None


def test_relative_paths_are_taken_from_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    got = load(_write(folder, '[gateway]\nspool = "spool"\nledger = "db/ledger.db"\n'
                      '[key]\npassphrase_file = "../secret"\n'))
    assert got.spool == folder.absolute() / "spool"
    assert got.ledger == folder.absolute() / "db" / "ledger.db"
    assert got.passphrase_file == folder.absolute() / ".." / "secret"


@pytest.mark.parametrize("text, expected", [
    ('[gateway]\nalow = ["X"]\n', "gateway.alow: unknown key (did you mean allow?)"),
    ("[gatway]\nport = 1\n", "[gatway]: unknown section (did you mean [gateway]?)"),
    ('[gateway]\nfingerprint = "ab"\n', "gateway.fingerprint: unknown key "
                                        "(it belongs in [key])"),
    ("port = 1\n", "port: a key outside any section (put it under [gateway])"),
    ('[gateway]\nport = "11112"\n', "gateway.port: '11112' is not a port"),
    ("[gateway]\nport = 70000\n", "gateway.port: 70000 is not a port: a whole number "
                                  "from 1 to 65535"),
    ("[gateway]\nport = 0\n", "gateway.port: 0 is not a port"),
    ("[pacs]\nport = true\n", "pacs.port: True is not a port"),
    ('[gateway]\nallow = "MODALITY"\n', "gateway.allow: must be a list of AE title strings"),
    ("[gateway]\nallow = [1, 2]\n", "gateway.allow: must be a list of AE title strings"),
    ("[gateway]\nallow = []\n", "gateway.allow: is empty"),
    ('[gateway]\nallow = ["CT01", "A_VERY_LONG_AE_TITLE"]\n',
     "gateway.allow: item 2: 'A_VERY_LONG_AE_TITLE' is 20 characters long; an AE title "
     "has at most 16"),
    ('[gateway]\nae_title = "WB\\\\GW"\n', "gateway.ae_title: 'WB\\\\GW': an AE title is "
                                           "printable ASCII without a backslash"),
    ('[gateway]\nae_title = "WB\\tGW"\n', "gateway.ae_title: 'WB\\tGW': an AE title is "
                                          "printable ASCII"),
    ('[gateway]\nae_title = "GATEWAYÉ"\n', "gateway.ae_title: 'GATEWAYÉ': an AE title is "
                                           "printable ASCII"),
    ('[gateway]\nae_title = "    "\n', "gateway.ae_title: an AE title is 1 to 16 "
                                       "characters, not empty or only spaces"),
    ('[gateway]\nae_title = ""\n', "gateway.ae_title: an AE title is 1 to 16 characters"),
    ('[pacs]\nae_title = " ORTHANC"\nhost = "h"\nport = 1\n',
     "pacs.ae_title: ' ORTHANC' has leading or trailing spaces"),
    ("[gateway]\nae_title = 5\n", "gateway.ae_title: must be a string (an AE title), "
                                  "not a number"),
    ("[gateway]\nretry_seconds = 0\n", "gateway.retry_seconds: must be a number of seconds "
                                       "above 0"),
    ("[gateway]\nretry_seconds = nan\n", "gateway.retry_seconds: must be a number of "
                                         "seconds above 0"),
    ("[gateway]\nspool = 3\n", "gateway.spool: must be a path"),
    ('[gateway]\nhost = ""\n', "gateway.host: must be a host name or address"),
    ('[key]\nfingerprint = "not hex"\n', "key.fingerprint: must be a key fingerprint"),
    ('[pacs]\nae_title = "ORTHANC"\nport = 4242\n',
     "pacs.host: missing ([pacs] needs ae_title, host and port)"),
    ("gateway = 1\n", "gateway: must be a table (a [gateway] section)"),
])
def test_each_problem_is_one_line_naming_the_file_and_the_key(
        tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_a_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, '[gateway]\nport = 11112\nallow = ["A",\nhost = \n')
    assert message.startswith("line 4: not valid TOML: ")
    assert _error(tmp_path, '[gateway]\nport = 1\nport = 2\n').startswith("line 3: ")
    assert "not valid TOML" in _error(tmp_path, '[gateway]\nhost = "unterminated')


def test_an_unreadable_or_undecodable_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=_at(missing, "cannot read the configuration: No such")):
        load(missing)
    with pytest.raises(ConfigError, match=_at(tmp_path, "cannot read the configuration")):
        load(tmp_path)  # a folder
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[gateway]\nae_title = "\xe9"\n')
    with pytest.raises(ConfigError, match=_at(bad, "not UTF-8 text")):
        load(bad)


@pytest.mark.parametrize("text", [
    '[key]\npassphrase = "x"\n',
    '[gateway]\nPassphrase = "x"\n',
    '[pacs]\npassword = "x"\n',
    '[elsewhere.deeper]\npassphrase = "x"\n',
    'passphrase = "x"\n',
    '[[many]]\npassphrase = "x"\n',
])
def test_a_passphrase_in_the_file_is_refused_and_never_echoed(tmp_path: Path,
                                                              text: str) -> None:
    message = _error(tmp_path, text)
    assert message.endswith(": a passphrase is never kept in the configuration; use "
                            "passphrase_file or $WORKBENCH_KEY_PASSPHRASE")
    assert '"x"' not in message and "'x'" not in message


# --- merged with the command line ----------------------------------------------------------
def _args(*argv: str):
    parser, _family = build_parser(find_command("gateway"))
    return parser.parse_args(["gateway", *argv])


def test_an_option_given_wins_over_the_file_and_defaults_apply_last(tmp_path: Path) -> None:
    path = _write(tmp_path, '[gateway]\nport = 4000\nallow = ["CT01", "CR02"]\n'
                            'spool = "spool"\n[pacs]\nae_title = "PACS"\nhost = "h"\n'
                            "port = 104\n")
    values, source = settings(_args("--config", str(path)))
    assert values["port"] == 4000 and values["allow"] == ["CT01", "CR02"]
    assert values["ae_title"] == "WB_GATEWAY" and values["retry"] == 5.0  # defaults
    assert values["spool"] == tmp_path.absolute() / "spool"
    assert values["pacs"] == Peer("PACS", "h", 104)
    assert source == str(path.absolute())
    values, source = settings(_args("--config", str(path), "--port", "5000",
                                    "--allow", "MR01", "--pacs", "OTHER@x:11"))
    assert values["port"] == 5000 and values["allow"] == ["MR01"]  # replaced, not added
    assert values["pacs"] == Peer("OTHER", "x", 11)
    assert source == (f"{path.absolute()}, with --port, --pacs and --allow from the "
                      "command line")
    values, source = settings(_args("--pacs", "P@h:1", "--allow", "A"))
    assert source == "the command line" and values["port"] == 11112


def test_what_neither_gives_is_missing_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, '[gateway]\nallow = ["CT01"]\n')
    with pytest.raises(CommandError, match=_at(path, "pacs: missing")):
        settings(_args("--config", str(path)))
    settings(_args("--config", str(path), "--pacs", "P@h:1"))  # the command line fills it
    path = _write(tmp_path, '[pacs]\nae_title = "P"\nhost = "h"\nport = 1\n')
    with pytest.raises(CommandError, match=_at(path, "gateway.allow: missing")):
        settings(_args("--config", str(path)))
    with pytest.raises(CommandError, match="--pacs AE@HOST:PORT"):
        settings(_args("--allow", "A"))


def test_options_given_are_held_to_the_same_rules() -> None:
    with pytest.raises(CommandError, match=re.escape("--allow: 'A\\\\B': an AE title")):
        settings(_args("--pacs", "P@h:1", "--allow", "A\\B"))
    with pytest.raises(CommandError, match="--port: 0 is not a port"):
        settings(_args("--pacs", "P@h:1", "--allow", "A", "--port", "0"))
    with pytest.raises(CommandError, match="--pacs P@h:99999: 99999 is not a port"):
        settings(_args("--pacs", "P@h:99999", "--allow", "A"))


def test_help_says_the_command_line_overrides_the_file(capsys) -> None:
    with pytest.raises(SystemExit):
        _args("--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "--config FILE" in out
    assert "Options given on the command line override the configuration file's values" in out


def test_a_bad_file_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = _write(tmp_path, '[gateway]\nalow = ["MODALITY"]\n', "bad.toml")
    run = subprocess.run([sys.executable, "-m", "workbench", "gateway", "--config",
                          str(bad)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "WORKBENCH_HOME": str(tmp_path)})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"error: {bad}: gateway.alow: unknown key (did you mean allow?)"]
