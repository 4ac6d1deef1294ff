"""Scoring a reader study: the answers against the key, per reader and pooled.

What is compared, and with which test (docs/reader_study.md says why):

- authenticity: accuracy of "real or manipulated" (Wilson 95% intervals), with the share
  of manipulated images called manipulated (detection) and of real ones called
  manipulated (false alarms);
- diagnosis on originals against diagnosis on manipulated images. In the paired design a
  reader saw both versions of each lesion: the pair is (that reader, that lesion), and
  McNemar's test compares them, as Du-Harpur et al. did. In the single design the
  originals and the manipulated images are different lesions, nothing is paired within a
  reader, and Fisher's exact test compares the two proportions;
- reader against model on the same shown images: paired per image (McNemar);
- the model's accuracy on the shown images (its answer on each file as written, from
  the key);
- agreement between readers: Fleiss' kappa on the cases every reader answered.

Pooled figures put every reader's answers together; their intervals and tests treat the
answers as independent, which answers of one reader, or on one lesion, are not: they are
too narrow, and the per-reader figures are the ones to report first.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from .answers import answers_dir, read_answers
from .layout import AUTHENTIC, CONFIDENCE, StudyError, load_key, load_study, write_json_atomic
from .stats import fisher, fleiss_kappa, mcnemar, paired_table, proportion


def _observations(study: Any, key: dict[str, Any], notes: list[str]
                  ) -> dict[str, list[dict[str, Any]]]:
    """reader -> their valid answers, each joined with its key entry."""
    by_reader: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(answers_dir(study.folder).glob("*.jsonl")):
        log = read_answers(path)
        if log.torn is not None:
            notes.append(f"{path.name}: a torn last line (a crash mid-write) was ignored")
        if log.duplicates:
            notes.append(f"{path.name}: answered again, first answer kept: "
                         f"{', '.join(sorted(set(log.duplicates)))}")
        seen: set[str] = set()
        rows = []
        for a in log.answers:
            entry = key["by_case"].get(a.case)
            if entry is None or a.case in seen:
                if entry is None:
                    notes.append(f"{path.name}: {a.case!r} is not a case of this study")
                continue
            if a.authentic not in AUTHENTIC or a.diagnosis not in study.class_names \
                    or a.confidence not in CONFIDENCE:
                notes.append(f"{path.name}: the answer to {a.case} is not valid; ignored")
                continue
            seen.add(a.case)
            rows.append({
                "reader": log.reader, "case": a.case, "lesion": entry["lesion"],
                "truth": entry["truth"], "attack": entry.get("attack"),
                "authentic_ok": a.authentic == entry["truth"],
                "said_manipulated": a.authentic == "manipulated",
                "diagnosis_ok": a.diagnosis == entry["label"],
                "diagnosis": a.diagnosis, "authentic": a.authentic,
                "model_ok": bool(entry["model"]["correct"]),
                "confidence": a.confidence, "seconds": a.seconds})
        if rows:
            by_reader[log.reader] = rows
        if len(rows) < len(study.cases):
            notes.append(f"{log.reader}: {len(rows)} of {len(study.cases)} cases answered")
    return by_reader


def _unchanged(entry: dict[str, Any]) -> bool:
    """A manipulated image whose written pixels equal its original's."""
    return bool((entry.get("change") or {}).get("unchanged"))


def _count(rows: list[dict[str, Any]], field: str) -> dict[str, Any]:
    return proportion(sum(r[field] for r in rows), len(rows))


def _compare_diagnosis(rows: list[dict[str, Any]], design: str) -> dict[str, Any]:
    """Originals against manipulated images: McNemar on (reader, lesion) pairs in the
    paired design, Fisher's exact test on the two groups in the single one."""
    if design == "paired":
        pairs: dict[tuple[str, str], dict[str, bool]] = {}
        for r in rows:
            pairs.setdefault((r["reader"], r["lesion"]), {})[r["truth"]] = r["diagnosis_ok"]
        both = [p for p in pairs.values() if len(p) == 2]
        table = paired_table([p["real"] for p in both], [p["manipulated"] for p in both])
        return {"paired_on": "the same reader's diagnosis of the original and of the "
                             "manipulated version of the same lesion",
                **table, **mcnemar(table["b"], table["c"])}
    real = [r for r in rows if r["truth"] == "real"]
    fake = [r for r in rows if r["truth"] == "manipulated"]
    return {"paired_on": None, **fisher(sum(r["diagnosis_ok"] for r in real), len(real),
                                        sum(r["diagnosis_ok"] for r in fake), len(fake))}


def _against_model(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The reader's diagnosis against the model's on the same shown images (McNemar:
    b = reader right and model wrong, c = model right and reader wrong)."""
    out = {}
    for truth in AUTHENTIC:
        rs = [r for r in rows if r["truth"] == truth]
        table = paired_table([r["diagnosis_ok"] for r in rs], [r["model_ok"] for r in rs])
        out["originals" if truth == "real" else "manipulated"] = {
            **table, **mcnemar(table["b"], table["c"])}
    return out


def reader_stats(rows: list[dict[str, Any]], design: str) -> dict[str, Any]:
    """Every figure of one reader (or of the pool of all readers' answers)."""
    real = [r for r in rows if r["truth"] == "real"]
    fake = [r for r in rows if r["truth"] == "manipulated"]
    seconds = [r["seconds"] for r in rows]
    return {
        "answered": len(rows),
        "authenticity": _count(rows, "authentic_ok"),
        "detected": _count(fake, "said_manipulated"),
        "false_alarms": _count(real, "said_manipulated"),
        "diagnosis": {"originals": _count(real, "diagnosis_ok"),
                      "manipulated": _count(fake, "diagnosis_ok"),
                      "comparison": _compare_diagnosis(rows, design)},
        "model_on_these_images": {"originals": _count(real, "model_ok"),
                                  "manipulated": _count(fake, "model_ok")},
        "reader_vs_model": _against_model(rows),
        "mean_confidence": statistics.fmean(r["confidence"] for r in rows) if rows else None,
        "median_seconds": statistics.median(seconds) if seconds else None,
    }


def model_stats(key: dict[str, Any], design: str) -> dict[str, Any]:
    """The model's accuracy on every shown image, and originals against manipulated
    (paired on the lesion in the paired design)."""
    rows = [{"reader": "model", "lesion": e["lesion"], "truth": e["truth"],
             "diagnosis_ok": bool(e["model"]["correct"])} for e in key["cases"]]
    real = [r for r in rows if r["truth"] == "real"]
    fake = [r for r in rows if r["truth"] == "manipulated"]
    return {"name": key["models"]["victim"]["name"],
            "originals": _count(real, "diagnosis_ok"),
            "manipulated": _count(fake, "diagnosis_ok"),
            "comparison": _compare_diagnosis(rows, design)}


def agreement(by_reader: dict[str, list[dict[str, Any]]], class_names: tuple[str, ...]
              ) -> dict[str, Any]:
    """Fleiss' kappa on the cases every reader answered (the formula needs the same
    raters on every case), for authenticity and for diagnosis."""
    if len(by_reader) < 2:
        return {"note": "one reader: no agreement to measure"}
    answers = {name: {r["case"]: r for r in rows} for name, rows in by_reader.items()}
    common = sorted(set.intersection(*(set(a) for a in answers.values())))
    out: dict[str, Any] = {"readers": len(by_reader), "cases": len(common)}
    for field, categories in (("authentic", AUTHENTIC), ("diagnosis", class_names)):
        counts = [[sum(answers[name][c][field] == cat for name in answers)
                   for cat in categories] for c in common]
        out[field] = fleiss_kappa(counts)
    return out


def by_attack(key: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled over readers, per attack: how often its images were called manipulated,
    diagnosed right by the readers, and by the model."""
    out = {}
    for name in sorted({e["attack"] for e in key["cases"] if e["attack"]}):
        rs = [r for r in rows if r["attack"] == name]
        cases = [e for e in key["cases"] if e["attack"] == name]
        out[name] = {"images": len(cases), "detected": _count(rs, "said_manipulated"),
                     "reader_diagnosis": _count(rs, "diagnosis_ok"),
                     "model": proportion(sum(bool(e["model"]["correct"]) for e in cases),
                                         len(cases)),
                     "unchanged": sum(_unchanged(e) for e in cases)}
    return out


def score_study(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole score of the study in ``study_dir`` (a JSON-able dict)."""
    study = load_study(study_dir)
    key = load_key(study_dir)
    if set(key["by_case"]) != set(study.cases):
        raise StudyError(f"{study.folder}: key.json and study.json list different cases")
    design = key.get("design", "single")
    notes: list[str] = []
    by_reader = _observations(study, key, notes)
    if not by_reader:
        raise StudyError(f"{answers_dir(study.folder)}: no answers yet (one <reader>.jsonl "
                         "per reader)")
    unchanged = [e["case"] for e in key["cases"] if e["truth"] == "manipulated"
                 and _unchanged(e)]
    if unchanged:
        notes.append(f"{len(unchanged)} manipulated image(s) came out pixel-identical to "
                     f"their original ({', '.join(unchanged)}); scored as manipulated")
    if len(by_reader) > 1:
        notes.append("pooled intervals and tests treat all readers' answers as independent; "
                     "they are too narrow: report the per-reader figures first")
    pooled = [r for rows in by_reader.values() for r in rows]
    return {
        "study": str(study.folder), "design": design, "cases": len(study.cases),
        "manipulated": sum(e["truth"] == "manipulated" for e in key["cases"]),
        "class_names": list(study.class_names),
        "readers": {name: reader_stats(rows, design) for name, rows in by_reader.items()},
        "pooled": reader_stats(pooled, design),
        "model": model_stats(key, design),
        "agreement": agreement(by_reader, study.class_names),
        "by_attack": by_attack(key, pooled),
        "notes": notes,
    }


def write_score(out: str | os.PathLike[str], summary: dict[str, Any]) -> list[Path]:
    """score.json, score.md and the two plots into ``out``."""
    from .plots import write_plots
    from .report import markdown

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "score.json", summary)
    (folder / "score.md").write_text(markdown(summary), encoding="utf-8")
    return [folder / "score.json", folder / "score.md", *write_plots(folder, summary)]
