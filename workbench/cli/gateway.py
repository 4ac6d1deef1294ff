"""``workbench gateway``: the signing DICOM gateway (see workbench.gateway).

    workbench gateway --ae-title WB_GATEWAY --port 11112 --pacs ORTHANC@127.0.0.1:4242 \\
        --allow MODALITY [--allow ...] [--key FP] [--spool DIR]

The key's passphrase comes from $WORKBENCH_KEY_PASSPHRASE or --passphrase-file (never an
argument). It runs until interrupted (Ctrl+C or SIGTERM), printing one log line per
instance with the counts: received, signed, unsigned, forwarded, queued, refused.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from pathlib import Path

from .plumbing import EXIT_OK, CommandError, passphrase


def cmd_gateway(args: argparse.Namespace) -> int:
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        raise CommandError("the gateway needs pynetdicom: pip install pynetdicom") from None
    from ..gateway.server import Gateway, GatewayConfig, Peer
    from ..home import ledger_file, workbench_home
    from ..provenance.ledger.store import Ledger
    from ..provenance.records import keys

    try:
        pacs = Peer.parse(args.pacs)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not args.allow:
        raise CommandError("name the modalities allowed to send with --allow AE_TITLE")
    info = keys.resolve_key(args.key)
    private = keys.load_private_key(info.fingerprint, passphrase(args))
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
    config = GatewayConfig(ae_title=args.ae_title, host=args.host, port=args.port,
                           pacs=pacs, allowed=args.allow,
                           spool=Path(args.spool) if args.spool
                           else workbench_home() / "gateway" / "spool",
                           retry_seconds=args.retry)
    ledger = Ledger(Path(args.ledger) if args.ledger else ledger_file())
    gateway = Gateway(config, private, info.fingerprint, ledger)
    signal.signal(signal.SIGTERM, lambda *_: gateway._stop.set())
    try:
        gateway.serve_forever()
    finally:
        ledger.close()
    print(gateway.status(), file=sys.stderr)
    return EXIT_OK


def _gateway_arguments(g: argparse.ArgumentParser) -> None:
    g.description = (__doc__ or "").split("\n\n")[0]
    g.add_argument("--ae-title", default="WB_GATEWAY", help="this gateway's AE title")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on")
    g.add_argument("--port", type=int, default=11112)
    g.add_argument("--pacs", required=True, metavar="AE@HOST:PORT", help="where to forward")
    g.add_argument("--allow", action="append", default=[], metavar="AE_TITLE",
                   help="a calling AE title allowed to send (repeat); others are refused")
    g.add_argument("--key", help="signing key fingerprint (default: the only one)")
    g.add_argument("--passphrase-file", metavar="FILE")
    g.add_argument("--spool", metavar="DIR", help="durable queue (default: in WORKBENCH_HOME)")
    g.add_argument("--ledger", metavar="FILE", help="ledger file (default: in WORKBENCH_HOME)")
    g.add_argument("--retry", type=float, default=5.0, help="seconds between PACS retries")
    g.set_defaults(handler=cmd_gateway)


ARGUMENTS = {"gateway": _gateway_arguments}
