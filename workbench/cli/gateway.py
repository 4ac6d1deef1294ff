"""``workbench gateway``: the signing DICOM gateway (see workbench.gateway).

    workbench gateway --config /etc/workbench/gateway.toml
    workbench gateway --ae-title WB_GATEWAY --port 11112 --pacs ORTHANC@127.0.0.1:4242 \\
        --allow MODALITY [--allow ...] [--key FP] [--spool DIR]

The configuration file (TOML, docs/gateway.md) holds the same settings; an option given on
the command line overrides the file's value (--allow replaces the file's list). The key's
passphrase comes from $WORKBENCH_KEY_PASSPHRASE or a passphrase file (--passphrase-file,
or passphrase_file in the configuration), never an argument nor the configuration. It runs
until interrupted (Ctrl+C or SIGTERM), printing one log line per instance with the counts:
received, signed, unsigned, forwarded, queued, refused.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from .plumbing import EXIT_OK, CommandError, passphrase

# the real defaults, applied after the configuration file: argparse's are all None so
# that an option the user gave can be told from one left out
DEFAULTS: dict[str, Any] = {"ae_title": "WB_GATEWAY", "host": "127.0.0.1", "port": 11112,
                            "retry": 5.0}
# the settings both the file and the command line can give: argparse dest -> option
OPTIONS = {"ae_title": "--ae-title", "host": "--host", "port": "--port", "pacs": "--pacs",
           "allow": "--allow", "key": "--key", "passphrase_file": "--passphrase-file",
           "spool": "--spool", "ledger": "--ledger", "retry": "--retry"}


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The merged settings (option given > configuration file > default) under the
    option names, and where they came from, in words, for the start-up log line."""
    from ..gateway.config_file import ConfigError, load

    file = None
    if args.config:
        try:
            file = load(args.config)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
    given = [name for name in OPTIONS if getattr(args, name) is not None]
    values: dict[str, Any] = {}
    for name in OPTIONS:
        value = getattr(args, name)
        if value is None and file is not None:
            value = getattr(file, name)
        values[name] = DEFAULTS.get(name) if value is None else value
    _check_options(args, values)
    if file is None:
        if values["pacs"] is None:
            raise CommandError("name the PACS to forward to with --pacs AE@HOST:PORT "
                               "(or --config FILE)")
        if not values["allow"]:
            raise CommandError("name the modalities allowed to send with --allow AE_TITLE")
        return values, "the command line"
    if values["pacs"] is None:
        raise CommandError(f"{file.path}: pacs: missing; add a [pacs] section (ae_title, "
                           "host, port) or give --pacs AE@HOST:PORT")
    if not values["allow"]:
        raise CommandError(f"{file.path}: gateway.allow: missing; list the calling AE "
                           "titles allowed to send (anything else is refused), or give "
                           "--allow AE_TITLE")
    source = str(file.path.absolute())
    if given:
        names = [OPTIONS[n] for n in given]
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        source += f", with {listed} from the command line"
    return values, source


def _check_options(args: argparse.Namespace, values: dict[str, Any]) -> None:
    """The options given are held to the same rules as the file's values."""
    from ..gateway.config_file import ae_title_problem, port_problem
    from ..gateway.server import Peer

    if args.pacs is not None:
        try:
            values["pacs"] = Peer.parse(args.pacs)
        except ValueError as exc:
            raise CommandError(f"--pacs {exc}") from None
        problem = (ae_title_problem(values["pacs"].ae_title)
                   or port_problem(values["pacs"].port))
        if problem:
            raise CommandError(f"--pacs {args.pacs}: {problem}")
    titles = [("--ae-title", args.ae_title)] if args.ae_title is not None else []
    titles += [("--allow", t) for t in args.allow or []]
    for option, title in titles:
        problem = ae_title_problem(title)
        if problem:
            raise CommandError(f"{option}: {problem}")
    if args.port is not None and port_problem(args.port):
        raise CommandError(f"--port: {port_problem(args.port)}")
    if args.retry is not None and not args.retry > 0:
        raise CommandError(f"--retry {args.retry}: must be a number of seconds above 0")


def _signing_key(args: argparse.Namespace, values: dict[str, Any]) -> tuple[Any, str]:
    """The private key and its fingerprint; a problem with a key or passphrase file the
    configuration named says so, with the file and the key."""
    from ..provenance.records import keys

    from_file = {n for n in ("key", "passphrase_file")
                 if args.config and getattr(args, n) is None and values[n] is not None}
    try:
        info = keys.resolve_key(values["key"])
    except keys.KeyStoreError as exc:
        if "key" in from_file:
            raise CommandError(f"{args.config}: key.fingerprint: {exc}") from None
        raise
    # passphrase() reads the environment or args.passphrase_file (and warns when that file
    # is readable by others): the configuration's file goes the same way
    args.passphrase_file = str(values["passphrase_file"]) if values["passphrase_file"] \
        else None
    try:
        secret = passphrase(args)
    except CommandError as exc:
        if "passphrase_file" in from_file:
            raise CommandError(f"{args.config}: key.passphrase_file "
                               f"{args.passphrase_file}: {exc}") from None
        raise
    return keys.load_private_key(info.fingerprint, secret), info.fingerprint


def cmd_gateway(args: argparse.Namespace) -> int:
    values, source = settings(args)  # before pynetdicom: a bad file is said at once
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        raise CommandError("the gateway needs pynetdicom: pip install pynetdicom") from None
    from ..gateway.server import Gateway, GatewayConfig
    from ..home import ledger_file, workbench_home
    from ..provenance.ledger.store import Ledger

    private, fingerprint = _signing_key(args, values)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("pynetdicom", "pynetdicom.assoc", "pynetdicom.events"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pydicom both logs and warns each odd value it meets, several times per instance:
    # the warning alone, once per distinct text, as a log line (warnings are process-wide,
    # so tying them to one instance among concurrent associations could misname it)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    logging.captureWarnings(True)
    warnings.simplefilter("once")
    config = GatewayConfig(ae_title=values["ae_title"], host=values["host"],
                           port=values["port"], pacs=values["pacs"],
                           allowed=list(values["allow"]),
                           spool=Path(values["spool"]) if values["spool"]
                           else workbench_home() / "gateway" / "spool",
                           retry_seconds=values["retry"], source=source)
    ledger = Ledger(Path(values["ledger"]) if values["ledger"] else ledger_file())
    gateway = Gateway(config, private, fingerprint, ledger)
    signal.signal(signal.SIGTERM, lambda *_: gateway._stop.set())
    try:
        gateway.serve_forever()
    finally:
        ledger.close()
    print(gateway.status(), file=sys.stderr)
    return EXIT_OK


def _gateway_arguments(g: argparse.ArgumentParser) -> None:
    g.description = (__doc__ or "").split("\n\n")[0]
    g.epilog = ("Options given on the command line override the configuration file's "
                "values (--allow replaces its list); the defaults apply last.")
    # every default is None: see DEFAULTS
    g.add_argument("--config", metavar="FILE",
                   help="configuration file (TOML: [gateway], [pacs], [key]; "
                        "docs/gateway.md); the options below override its values")
    g.add_argument("--ae-title", help=f"this gateway's AE title (default: "
                                      f"{DEFAULTS['ae_title']})")
    g.add_argument("--host", help=f"address to listen on (default: {DEFAULTS['host']})")
    g.add_argument("--port", type=int, help=f"port to listen on (default: {DEFAULTS['port']})")
    g.add_argument("--pacs", metavar="AE@HOST:PORT",
                   help="where to forward (required here or in the configuration)")
    g.add_argument("--allow", action="append", metavar="AE_TITLE",
                   help="a calling AE title allowed to send (repeat); others are refused "
                        "(required here or in the configuration)")
    g.add_argument("--key", help="signing key fingerprint (default: the only one)")
    g.add_argument("--passphrase-file", metavar="FILE",
                   help="the key's passphrase (default: $WORKBENCH_KEY_PASSPHRASE)")
    g.add_argument("--spool", metavar="DIR", help="durable queue (default: in WORKBENCH_HOME)")
    g.add_argument("--ledger", metavar="FILE", help="ledger file (default: in WORKBENCH_HOME)")
    g.add_argument("--retry", type=float, help=f"seconds between PACS retries (default: "
                                               f"{DEFAULTS['retry']:g})")
    g.set_defaults(handler=cmd_gateway)


ARGUMENTS = {"gateway": _gateway_arguments}
