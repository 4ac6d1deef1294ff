"""``workbench report IMAGE... --out report.html|.pdf``: the case report, headless."""

from __future__ import annotations

import argparse
from pathlib import Path

from .plumbing import EXIT_OK, CommandError, passphrase, say


def cmd_report(args: argparse.Namespace) -> int:
    from ..engine.plugins import PluginRegistry
    from ..report.case_report import build_case, fingerprint_report, render_html

    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise CommandError(f"{missing[0]}: no such file")
    model = None
    if args.model != "none":
        from ..models.zoo import load_model

        say(f"loading the model {args.model}…")

        model = load_model(args.model)
    registry = PluginRegistry()
    infos = [p for p in registry.plugins if p.kind == "detector" and p.ok]
    if args.detectors not in ("all", "none"):
        wanted = {d.strip() for d in args.detectors.split(",")}
        infos = [p for p in infos if p.name in wanted]
    elif args.detectors == "none":
        infos = []
    cases = [build_case(p, model=model, model_name=args.model,
                        detectors=[i.create() for i in infos]) for p in args.images]
    html = render_html(cases, title=args.title)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        from ..gui.report_pdf import html_to_pdf  # Qt's PDF writer, offscreen

        html_to_pdf(html, out)
    else:
        out.write_text(html, encoding="utf-8")
    key = None
    if args.sign:
        from ..provenance.records import keys

        info = keys.resolve_key(args.key)
        key = keys.load_private_key(info.fingerprint, passphrase(args))
    stamp = fingerprint_report(out, key)
    print(f"report of {len(cases)} image(s) written to {out} (sha256 {stamp['sha256'][:16]}…"
          + (", signed" if key is not None else "") + ")")
    return EXIT_OK


def _report_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--out", required=True, help="report.html or report.pdf")
    r.add_argument("--model", default="demo", help="demo, a model card, or none")
    r.add_argument("--detectors", default="all", help="all, none, or a comma list")
    r.add_argument("--title", default="Case report")
    r.add_argument("--sign", action="store_true", help="sign the report's hash")
    r.add_argument("--key", metavar="FINGERPRINT_PREFIX")
    r.add_argument("--passphrase-file", metavar="FILE")
    r.set_defaults(handler=cmd_report)


ARGUMENTS = {"report": _report_arguments}
