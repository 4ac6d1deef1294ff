"""From per-image rows to the tables: Finlayson et al. Table 1 per condition, Du-Harpur et
al.'s flip rate, and the detector x attack matrix; written as CSV, JSON, Markdown and
plots."""

from __future__ import annotations

import csv
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import auroc, with_ci

# Finlayson et al. (2019), Table 1, dermoscopy column: accuracy, AUROC, mean confidence.
PAPER_DERMOSCOPY = {
    "clean": (0.876, 0.858, 0.941),
    "pgd/white": (0.0, 0.0, 1.0),
    "pgd/black": (0.379, 0.071, 0.920),
    "natural-patch/white": (0.675, 0.482, 0.856),
    "natural-patch/black": (0.675, 0.482, 0.856),  # trained on no model: one row in the paper
    "universal-patch/white": (0.0, 0.0, 0.997),
    "universal-patch/black": (0.0137, 0.0, 0.976),
}
# … and its chest X-ray column (the same table, p. 7 of the seed)
PAPER_CHEST_XRAY = {
    "clean": (0.949, 0.937, 0.961),
    "pgd/white": (0.0, 0.0, 1.0),
    "pgd/black": (0.151, 0.014, 0.926),
    "natural-patch/white": (0.921, 0.539, 0.958),
    "natural-patch/black": (0.921, 0.539, 0.958),
    "universal-patch/white": (0.0, 0.0, 0.988),
    "universal-patch/black": (0.097, 0.004, 0.833),
}
PAPER_COLUMNS = {"dermoscopy": PAPER_DERMOSCOPY, "chest X-ray": PAPER_CHEST_XRAY}
# Du-Harpur et al. (2020): share of attacked melanomas classified as nevus afterwards
# (colour balance: 120 of 782 test images; rotation/translation: 45.6% of those tested).
PAPER_FLIP_RATES = {"colour-balance/query": 0.1535, "rotation-translation/query": 0.456}
DEFAULT_FPR = 0.05


def _rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for res in results for r in res["rows"]]


def _conditions(results: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for res in results:
        seen.setdefault(res["unit"]["condition"], None)
    return list(seen)


def condition_metrics(rows: list[dict[str, Any]], positive: int, seed: int) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r["index"])
    n = len(rows)
    correct = np.array([r["correct"] for r in rows], dtype=float)
    p_pos = np.array([r["p_positive"] for r in rows])
    is_pos = np.array([r["label"] == positive for r in rows])
    conf = np.array([r["confidence"] for r in rows])
    m: dict[str, Any] = {
        "n": n,
        "accuracy": with_ci(lambda i: float(correct[i].mean()), n, seed),
        "auroc": with_ci(lambda i: auroc(p_pos[i], is_pos[i]), n, seed + 1),
        "mean_confidence": with_ci(lambda i: float(conf[i].mean()), n, seed + 2),
    }
    for key in ("l2", "linf", "l0", "queries"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        m[f"mean_{key}"] = float(np.mean(vals)) if vals else None
    if rows and rows[0]["attack"]:
        m["success_rate"] = float(np.mean([bool(r["success"]) for r in rows]))
        before = [r.get("correct_unrounded") for r in rows]
        # the victim on the unrounded tensors (units.py): the figure float-tensor papers
        # give; None for results from before rows described the 8-bit picture
        m["accuracy_unrounded"] = None if None in before else float(np.mean(before))
        m["undone_by_rounding"] = sum(b is False and r["correct"]  # wrong before, right after
                                      for b, r in zip(before, rows, strict=True))
        # Du-Harpur et al.: of the positives the model got right, how many flip
        eligible = [r for r in rows if r["label"] == positive and r["clean_correct"]]
        flips = [r["pred"] != r["clean_pred"] for r in eligible]
        m["flip_rate_correct_positives"] = float(np.mean(flips)) if flips else None
        m["n_correct_positives"] = len(eligible)
    return m


def detector_matrix(config: dict[str, Any], rows_by_condition: dict[str, list[dict]],
                    record: dict[str, Any] | None = None) -> dict[str, Any]:
    """For each detector: the threshold (saved calibration when it applies, else the 95th
    percentile of this run's clean scores, marked "in-run"), the false-positive rate on
    clean images, and per attack condition the AUROC clean-vs-attacked and the detection
    rate at the threshold (of all attacked copies and of the successful ones)."""
    from ..engine.calibration import load_calibration, threshold_at

    out: dict[str, Any] = {}
    clean = rows_by_condition.get("clean", [])
    for spec in config.get("detectors", []):
        name = spec["name"]
        clean_scores = [r["scores"].get(name) for r in clean]
        clean_scores = [s for s in clean_scores if s is not None]
        entry: dict[str, Any] = {"n_clean_scored": len(clean_scores), "conditions": {}}
        cal = load_calibration(name)
        victim = (((record or {}).get("models") or {}).get("victim") or {}).get(
            "card_name", "")
        # a saved threshold judges this run only when it was measured with this victim
        # (a model-free detector's says nothing of which images it was measured on
        # here: a dermoscopy threshold must not judge chest X-rays)
        if cal is not None and cal.model and cal.model == victim and (
                not spec.get("params") or cal.params == spec["params"]):
            entry["threshold"], entry["threshold_source"] = cal.threshold, (
                f"calibration of {cal.date} on {cal.n} clean images at {cal.fpr:.0%} FPR")
        elif len(clean_scores) >= 2:
            entry["threshold"] = threshold_at(clean_scores, DEFAULT_FPR)
            entry["threshold_source"] = (f"in-run: {1 - DEFAULT_FPR:.0%} quantile of this "
                                         f"run's {len(clean_scores)} clean scores")
        else:
            entry["threshold"], entry["threshold_source"] = None, "no usable clean scores"
            out[name] = entry
            continue
        t = entry["threshold"]
        entry["fpr_clean"] = float(np.mean([s > t for s in clean_scores]))
        for cond, rows in rows_by_condition.items():
            if cond == "clean":
                continue
            scored = [(r["scores"].get(name), bool(r["success"])) for r in rows]
            scored = [(s, ok) for s, ok in scored if s is not None]
            if not scored:
                entry["conditions"][cond] = {"n": 0}
                continue
            adv = np.array([s for s, _ in scored])
            labels = np.r_[np.zeros(len(clean_scores), bool), np.ones(len(adv), bool)]
            successful = [s for s, ok in scored if ok]
            entry["conditions"][cond] = {
                "n": len(adv),
                "auroc": auroc(np.r_[clean_scores, adv], labels),
                "detection_rate": float(np.mean(adv > t)),
                "detection_rate_successful": float(np.mean(np.array(successful) > t))
                if successful else None,
                "n_successful": len(successful),
            }
        out[name] = entry
    return out


def paper_domain(record: dict[str, Any]) -> str:
    """Which of the seed's columns the victim's images belong to: chest X-ray when its
    card (in the run record) fits CR / DX, else dermoscopy (the shipped demo's)."""
    victim = (record.get("models") or {}).get("victim") or {}
    return "chest X-ray" if {"CR", "DX"} & set(victim.get("modalities") or ()) \
        else "dermoscopy"


def summarise(config: dict[str, Any], record: dict[str, Any],
              results: list[dict[str, Any]]) -> dict[str, Any]:
    positive = int(config["positive_index"])
    domain = paper_domain(record)
    paper = PAPER_COLUMNS[domain]
    by_cond: dict[str, list[dict]] = {c: [] for c in _conditions(results)}
    for r in _rows(results):
        by_cond[r["condition"]].append(r)
    table = {}
    for cond, rows in by_cond.items():
        table[cond] = condition_metrics(rows, positive, config["seed"] + zlib.crc32(
            cond.encode()) % 10_000)
        table[cond]["paper"] = paper.get(cond)
        table[cond]["paper_dermoscopy"] = PAPER_DERMOSCOPY.get(cond)
        table[cond]["paper_flip_rate"] = PAPER_FLIP_RATES.get(cond)
    universal = sorted({res["unit"]["condition"] for res in results
                        if res["unit"]["id"].endswith("-all")})
    notes = []
    if config.get("pixels"):  # runs before it judged the unrounded tensors: nothing to say
        notes.append(f"every row is of an 8-bit picture at {config['image_size']} px, clean "
                     "or attacked: the attacked copies were rounded to whole 8-bit steps "
                     "within their L-inf budget (eps 0.01, say, is 2.55 steps and keeps 2) before "
                     "the model and the detectors saw them, as a saved image would be")
    undone = {c: m["undone_by_rounding"] for c, m in table.items()
              if m.get("undone_by_rounding")}
    if undone:
        notes.append("rounding to 8 bits undid the attack on some images, which the "
                     "unrounded tensor had fooled (their rows count the saved picture): "
                     + ", ".join(f"{c} {n}" for c, n in undone.items()))
    targeted = [a["name"] for a in config["attacks"] if a.get("targeted")]
    if targeted:
        notes.append("targeted (each image pushed to the other class; patch attacks train "
                     "one patch per target class, the seed's setup): " + ", ".join(targeted))
    if universal and config.get("universal_train"):
        notes.append("universal attacks (" + ", ".join(universal) + ") learned their patches "
                     f"on the model's {len(config['universal_train'])} training images and "
                     "were pasted on the evaluated ones, as Finlayson et al. did")
    elif universal:
        notes.append("universal attacks (" + ", ".join(universal) + ") learned their patch on "
                     "the evaluated images themselves (transductive), not on a separate "
                     "training set as Finlayson et al. did")
    return {"conditions": table, "detectors": detector_matrix(config, by_cond, record),
            "timing": condition_timing(results),
            "class_names": config["class_names"], "positive_class":
            config["class_names"][positive], "n_images": len(config["items"]),
            "image_size": config["image_size"], "seed": config["seed"],
            "paper_domain": domain, "models": _model_names(record),
            "config_sha256": record["config_sha256"], "notes": notes}


def _model_names(record: dict[str, Any]) -> dict[str, str | None]:
    """Which models the figures are of: name and the start of the weights' SHA-256 (a
    hardened copy keeps its parent's card name, not its weights)."""
    def named(entry: dict[str, Any] | None) -> str | None:
        if not entry:
            return None
        digest = str(entry.get("weights_sha256") or "")[:12]
        return f"{entry.get('card_name') or entry.get('name')}" + (
            f" (weights {digest})" if digest else "")

    models = record.get("models") or {}
    return {"victim": named(models.get("victim")), "surrogate": named(models.get("surrogate"))}


def models_line(summary: dict[str, Any]) -> str:
    """"model X, surrogate Y" for a summary's heading; "" for one made before the summary
    named its models."""
    models = summary.get("models") or {}
    if not models.get("victim"):
        return ""
    return f"model {models['victim']}" + (f", surrogate {models['surrogate']}"
                                         if models.get("surrogate") else "")


def condition_timing(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per condition: the seconds its units spent loading, in the models (clean forward,
    attack, adversarial forward) and in the detectors, and the floor of the model part:
    the images each model was run on, priced at one forward, or one forward and backward,
    at the working size (units.py). Units from runs before this was recorded are left
    out; a condition none of whose units has it is absent."""
    out: dict[str, dict[str, float]] = {}
    for res in results:
        t = res.get("timing")
        if not t:
            continue
        c = out.setdefault(res["unit"]["condition"], dict.fromkeys(
            ("setup_seconds", "model_seconds", "floor_seconds", "detector_seconds",
             "pricing_seconds", "images_forward", "images_forward_backward"), 0.0))
        for k in c:
            c[k] += float(t.get(k, 0.0))
    for c in out.values():
        c["ratio"] = c["model_seconds"] / c["floor_seconds"] if c["floor_seconds"] else None
    return out


# --- files ------------------------------------------------------------------------------
def _fmt(m: dict[str, float] | None, pct: bool = False) -> str:
    if not m or m.get("value") is None or (isinstance(m["value"], float)
                                           and math.isnan(m["value"])):
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    lo, hi = m["ci_low"], m["ci_high"]
    ci = f" [{f(lo)}, {f(hi)}]" if not (math.isnan(lo) or math.isnan(hi)) else ""
    return f"{f(m['value'])}{ci}"


def _num(v: Any, digits: int = 4, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.{digits}g}"


def markdown(summary: dict[str, Any]) -> str:
    models = models_line(summary)
    lines = [f"# Evaluation: {summary['n_images']} images at {summary['image_size']}², "
             f"positive class {summary['positive_class']}, seed {summary['seed']}", "",
             *([f"Figures of {models}.", ""] if models else []),
             "## Table 1 (Finlayson et al. 2019), with 95% bootstrap intervals", "",
             "| Condition | n | Accuracy | Accuracy before rounding | AUROC | "
             "Mean confidence | Mean L2 | Mean L∞ | Mean L0 (pixels) | "
             "Flip rate (correct positives) | Mean queries | "
             f"Paper ({summary.get('paper_domain', 'dermoscopy')}): acc / AUROC / conf "
             "(flip rate) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cond, m in summary["conditions"].items():
        paper, flip = m.get("paper", m.get("paper_dermoscopy")), m.get("paper_flip_rate")
        cited = (f"{100 * paper[0]:.2f}% / {paper[1]:.3f} / {100 * paper[2]:.1f}%" if paper
                 else f"({100 * flip:.1f}%)" if flip is not None else "–")
        lines.append(
            f"| {cond} | {m['n']} | {_fmt(m['accuracy'], True)} | "
            f"{_num(m.get('accuracy_unrounded'), pct=True)} | {_fmt(m['auroc'])} | "
            f"{_fmt(m['mean_confidence'])} | {_num(m['mean_l2'])} | {_num(m['mean_linf'])} | "
            f"{_num(m['mean_l0'], 6)} | "
            f"{_num(m.get('flip_rate_correct_positives'), pct=True)} | "
            f"{_num(m['mean_queries'], 6)} | {cited} |")
    if summary["detectors"]:
        lines += ["", "## Detector × attack", "",
                  "| Detector | Threshold | FPR (clean) | Condition | AUROC | Detection rate "
                  "| … of successful |", "|---|---|---|---|---|---|---|"]
        for name, d in summary["detectors"].items():
            if d.get("threshold") is None:
                lines.append(f"| {name} | – | – | – | – | – | – |")
                continue
            for cond, c in d["conditions"].items():
                lines.append(f"| {name} | {_num(d['threshold'])} | "
                             f"{_num(d['fpr_clean'], pct=True)} | {cond} | "
                             f"{_num(c.get('auroc'), 3)} | "
                             f"{_num(c.get('detection_rate'), pct=True)} | "
                             f"{_num(c.get('detection_rate_successful'), pct=True)} |")
        lines += [""] + [f"- {name}: threshold from {d['threshold_source']}"
                         for name, d in summary["detectors"].items()]
    if summary.get("timing"):
        lines += ["", "## Time against the floor", "",
                  "Model time: the clean forward, the attack and the adversarial forward. "
                  "Floor: the images each model was run on, priced at one forward (or one "
                  "forward and backward) of a batch at the working size, measured in the "
                  "same run (goal: model time at most 2x the floor). Pricing: the time "
                  "spent measuring those prices, once per process and batch size "
                  "(outside the model time).", "",
                  "| Condition | Images fwd | Images fwd+bwd | Set-up s | Model s | Floor s "
                  "| Model / floor | Detectors s | Pricing s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for cond, t in summary["timing"].items():
            ratio = "–" if t["ratio"] is None else f"{t['ratio']:.2f}x"
            lines.append(f"| {cond} | {int(t['images_forward'])} | "
                         f"{int(t['images_forward_backward'])} | {t['setup_seconds']:.2f} | "
                         f"{t['model_seconds']:.2f} | {t['floor_seconds']:.2f} | {ratio} | "
                         f"{t['detector_seconds']:.2f} | "
                         f"{t.get('pricing_seconds', 0.0):.2f} |")
    if summary["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("condition", "attack", "mode", "id", "index", "label", "pred", "correct",
              "p_positive", "confidence", "clean_pred", "clean_correct", "clean_p_positive",
              "success", "correct_unrounded", "linf", "l2", "l0", "queries")


def write_outputs(out: Path, config: dict[str, Any], record: dict[str, Any],
                  summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    from .plots import write_plots

    detectors = [d["name"] for d in config.get("detectors", [])]
    names = config["class_names"]
    with open(out / "per_image.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*CSV_FIELDS, "path", *(f"score:{d}" for d in detectors)])
        for r in _rows(results):
            row = [r.get(k) for k in CSV_FIELDS]
            row[CSV_FIELDS.index("label")] = names[r["label"]]
            row[CSV_FIELDS.index("pred")] = names[r["pred"]]
            row[CSV_FIELDS.index("clean_pred")] = names[r["clean_pred"]]
            w.writerow([*("" if v is None else v for v in row),
                        config["items"][r["index"]]["path"],
                        *("" if r["scores"].get(d) is None else r["scores"][d]
                          for d in detectors)])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    write_plots(out, config, summary, _rows(results))


def two_domain_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """Table 1 with one block of columns per domain (ours with 95 % intervals, then the
    seed's), rows the seed's conditions: e.g. {"dermoscopy": s1, "chest X-ray": s2}."""
    rows = ["clean", "pgd/white", "pgd/black", "natural-patch/white",
            "universal-patch/white", "universal-patch/black"]
    extra = sorted({c for s in summaries.values() for c in s["conditions"]} - set(rows))
    head = "| Condition | " + " | ".join(
        f"{d}: ours acc | ours AUROC | paper acc / AUROC" for d in summaries) + " |"
    lines = ["## Table 1 (Finlayson et al. 2019) in two domains, ours with 95% bootstrap "
             "intervals", "", head,
             "|---|" + "---|---|---|" * len(summaries)]
    for cond in rows + extra:
        cells = []
        for domain, s in summaries.items():
            m = s["conditions"].get(cond)
            p = PAPER_COLUMNS.get(domain, {}).get(cond)
            paper = f"{100 * p[0]:.2f}% / {p[1]:.3f}" if p else "–"
            cells += ([_fmt(m["accuracy"], True), _fmt(m["auroc"]), paper] if m
                      else ["–", "–", paper])
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
