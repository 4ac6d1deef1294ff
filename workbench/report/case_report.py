"""A case report an auditor can keep: identity, fingerprints, provenance verdict, the
model's answer, every detector's finding, and pictures, in one self-contained HTML file
(images inline as PNG data URIs). The report's own SHA-256 is written beside it and can
be signed with the user's key."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__

THUMB = 360  # longest side of the pictures in the report, px


def _png_data_uri(rgb: np.ndarray) -> str:
    import cv2

    h, w = rgb.shape[:2]
    scale = THUMB / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))),
                         interpolation=cv2.INTER_AREA)
    arr = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


def build_case(path: str | Path, *, model: Any = None, model_name: str = "",
               detectors: list[Any] | None = None) -> dict[str, Any]:
    """Everything the report says about one image (JSON-able, plus inline pictures)."""
    from ..imaging.display import orient, render
    from ..imaging.loader import load_image
    from ..provenance.records.fingerprint import file_sha256, pixel_fingerprint
    from ..provenance.records.verify import verify_image

    image = load_image(path)
    # the stored grid, which detectors' evidence maps are on; every picture is then turned
    # as EXIF says, as the window shows the photo (a sideways photo reads as another one)
    base = render(image, 0, oriented=False)
    case: dict[str, Any] = {
        "file": str(path), "identity": image.describe(),
        "fingerprints": {"pixels_sha256": pixel_fingerprint(image).sha256,
                         "file_sha256": file_sha256(path)},
        "picture": _png_data_uri(orient(base, image.orientation)),
    }
    v = verify_image(path, image=image)
    case["provenance"] = {"verdict": v.verdict, "summary": v.summary,
                          "record_source": v.record_source,
                          "checks": [(c.name, c.status, c.message) for c in v.checks]}
    if model is not None:
        from ..models.fit import fit_problem

        problem = fit_problem(model.card, image)
        if problem is not None:  # no diagnosis from a model trained on other images
            case["prediction"] = {"model": model_name or model.card.name, "not_fit": problem}
        else:
            from ..api import image_tensor
            from ..models.classifier import predict_proba

            probs = predict_proba(model, image_tensor(image))[0]
            case["prediction"] = {"model": model_name or model.card.name,
                                  "probabilities": {n: round(float(probs[i]), 4)
                                                    for i, n in enumerate(model.class_names)}}
            if image.n_frames > 1:  # the model, like the detectors, saw the first frame
                case["prediction"]["frame"] = f"frame 1 of {image.n_frames}"
            from ..models.fit import fit_caveat

            if caveat := fit_caveat(model.card, image):
                case["prediction"]["caveat"] = caveat
    outcomes, used, failed = _run_detectors(image, detectors, model)
    from ..engine.case_calibration import case_thresholds
    from ..engine.case_verdict import case_verdict

    verdict = case_verdict(v, outcomes if detectors else None, case_thresholds(used))
    # each row as the verdict judged it, so the report's table agrees with its verdict
    case["findings"] = _findings(base, detectors, verdict.outcomes, failed,
                                 image.orientation)
    case["verdict"] = {"verdict": verdict.verdict, "headline": verdict.headline,
                       "reasons": list(verdict.reasons)}
    return case


def _run_detectors(image: Any, detectors: list[Any] | None, model: Any
                   ) -> tuple[list[Any], list[Any], dict[str, dict[str, Any]]]:
    """Each detector's outcome (with the saved threshold that applies, as the GUI and
    ``workbench detect`` use it), the calibrations that judged them, and the report
    entries of those that failed (name -> entry)."""
    from ..api import make_params
    from ..engine.calibration import run_calibrated
    from ..engine.detector_runner import DetectorFailed

    outcomes, used, failed = [], [], {}
    for det in detectors or []:
        try:
            out, cal, _note = run_calibrated(det, image, make_params(det.Params, {}),
                                             model=model)
        except DetectorFailed as exc:
            failed[det.name] = {"detector": det.name, "verdict": "failed",
                                "explanation": str(exc).splitlines()[0]}
            continue
        outcomes.append(out)
        if cal is not None:
            used.append(cal)
    return outcomes, used, failed


def _findings(base: Any, detectors: list[Any] | None, judged: tuple[Any, ...],
              failed: dict[str, dict[str, Any]], orientation: int = 1) -> list[dict[str, Any]]:
    """The report entries in the detectors' order: the judged outcomes with their
    evidence pictures over ``base`` (the stored grid, shown turned by ``orientation``),
    and the failures."""
    from ..analysis.perturbation import heatmap_rgb, overlay
    from ..imaging.display import orient

    by_name = {o.name: o for o in judged}
    findings = []
    for det in detectors or []:
        if det.name in failed:
            findings.append(failed[det.name])
            continue
        out = by_name.get(det.name)
        if out is None:
            continue
        entry = {"detector": out.name, "score": out.score, "threshold": out.threshold,
                 "verdict": out.verdict, "explanation": out.explanation,
                 # what ran, so that a reader can run it again and get this row
                 "ran": f"v{out.version}" + "".join(f", {k}={v}"
                                                    for k, v in out.params.items())}
        if out.evidence is not None:
            ev = np.asarray(out.evidence, dtype=np.float32)
            top = float(np.percentile(ev, 99.5)) or float(ev.max()) or 1.0
            heat, _ = heatmap_rgb(ev, scale=top)
            if heat.shape[:2] != base.shape[:2]:
                import cv2

                heat = cv2.resize(heat, (base.shape[1], base.shape[0]))
            entry["picture"] = _png_data_uri(orient(overlay(base, heat, 0.6), orientation))
        findings.append(entry)
    return findings


def render_html(cases: list[dict[str, Any]], title: str = "Case report") -> str:
    """The report as one self-contained HTML document."""
    e = html.escape
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    colours = {"pass": "#2e9d4a", "fail": "#d23c3c", "warn": "#c98a0a", "skip": "#8a8f98",
               "intact": "#2e9d4a", "re-encoded": "#2e9d4a", "tampered": "#d23c3c",
               "look-alike": "#c98a0a",
               "clean": "#2e9d4a", "suspicious": "#c98a0a", "failed": "#d23c3c"}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             "<style>body{font-family:sans-serif;margin:24px;color:#222}"
             "table{border-collapse:collapse;margin:6px 0 14px}td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:12px;text-align:left;vertical-align:top}"
             "h2{border-bottom:2px solid #444;padding-bottom:4px}.v{font-weight:bold}"
             "img{margin:4px;border:1px solid #999}</style></head><body>",
             f"<h1>{e(title)}</h1><p>workbench {e(__version__)} &middot; {e(created)} &middot; "
             f"{len(cases)} image(s)</p>"]
    verdict_colours = {"authentic": "#2e7d32", "tampered": "#c62828", "suspicious": "#b26a00"}
    for case in cases:
        prov = case["provenance"]
        colour = colours.get(prov["verdict"], "#8a8f98")
        parts.append(f"<h2>{e(Path(case['file']).name)}</h2><p>{e(case['file'])}</p>")
        if case.get("verdict"):
            cv = case["verdict"]
            parts.append(f"<p class='v' style='color:{verdict_colours.get(cv['verdict'], '#444')}'"
                         f">Verdict: {e(cv['headline'])}</p><ul>" + "".join(
                             f"<li>{e(r)}</li>" for r in cv["reasons"]) + "</ul>")
        parts.append(f"<p class='v' style='color:{colour}'>Provenance: {e(prov['verdict'])} "
                     f"&mdash; {e(prov['summary'])}</p>")
        if case.get("picture"):  # in a table cell: Qt's PDF printer puts a bare <img> in
            # the line of the text after it, so the next heading ran into the picture
            parts.append(f"<table><tr><td><img alt='image' src='{case['picture']}'></td>"
                         "</tr></table>")
        ident = case["identity"]
        parts.append("<table>" + "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>"
                                         for k, v in ident.items()) + "".join(
            f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>"
            for k, v in case["fingerprints"].items()) + "</table>")
        parts.append("<table><tr><th>check</th><th>status</th><th>result</th></tr>" + "".join(
            f"<tr><td>{e(n)}</td><td style='color:{colours.get(s, '#222')}'>{e(s)}</td>"
            f"<td>{e(m)}</td></tr>" for n, s, m in prov["checks"]) + "</table>")
        if "prediction" in case and "not_fit" in case["prediction"]:
            p = case["prediction"]
            parts.append(f"<p style='color:#a06a00'><b>Model {e(p['model'])}: no "
                         f"diagnosis.</b> {e(p['not_fit'])}</p>")
        elif "prediction" in case:
            p = case["prediction"]
            on = f" on {e(p['frame'])}" if p.get("frame") else ""
            parts.append(f"<p>Model <b>{e(p['model'])}</b>{on}: " + ", ".join(
                f"{e(k)} {v:.3f}" for k, v in p["probabilities"].items()) + "</p>")
            if p.get("caveat"):
                parts.append(f"<p style='color:#666'><i>Note: {e(p['caveat'])}.</i></p>")
        if case["findings"]:
            rows = []
            for f in case["findings"]:
                score = "-" if f.get("score") is None else f"{f['score']:.4g}"
                thr = "-" if f.get("threshold") is None else f"{f['threshold']:.4g}"
                ran = f"<br><small>{e(f['ran'])}</small>" if f.get("ran") else ""
                rows.append(f"<tr><td>{e(f['detector'])}{ran}</td><td>{score}</td><td>{thr}</td>"
                            f"<td style='color:{colours.get(f['verdict'], '#222')}'>"
                            f"{e(f['verdict'])}</td><td>{e(f['explanation'])}</td></tr>")
            parts.append("<table><tr><th>detector</th><th>score</th><th>threshold</th>"
                         "<th>verdict</th><th>explanation</th></tr>" + "".join(rows)
                         + "</table>")
            pictures = [f for f in case["findings"] if f.get("picture")]
            for i in range(0, len(pictures), 2):  # two a row, each captioned under itself
                parts.append("<table><tr>" + "".join(
                    f"<td><img alt='evidence' src='{f['picture']}'><br>"
                    f"{e(f['detector'])} evidence</td>" for f in pictures[i:i + 2])
                    + "</tr></table>")
    parts.append("</body></html>")
    return "".join(parts)


def fingerprint_report(path: str | Path, private_key: Any = None) -> dict[str, Any]:
    """Write ``<report>.sha256`` and, with a key, ``<report>.wbsig.json``: an Ed25519
    signature over the canonical JSON of the report's hash, name and time."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    out: dict[str, Any] = {"report": path.name, "sha256": digest,
                           "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "tool": {"name": "workbench", "version": __version__}}
    if private_key is not None:
        from ..provenance.records.canonical_json import canonical_json
        from ..provenance.records.keys import fingerprint_of, raw_public_key

        raw = raw_public_key(private_key.public_key())
        out["signer"] = {"algorithm": "Ed25519", "key_fingerprint": fingerprint_of(raw),
                         "public_key": base64.b64encode(raw).decode()}
        out["signature"] = base64.b64encode(private_key.sign(canonical_json(out))).decode()
        path.with_name(path.name + ".wbsig.json").write_text(json.dumps(out, indent=2) + "\n")
    return out
