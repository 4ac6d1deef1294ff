"""The study folder: what readers may see (study.json, images/) and what they must not
(key.json), and reading both back.

    STUDY_DIR/
      study.json     public: the cases in reading order, their image files, the sessions
                     (blocks) they are read in, the questions and the diagnosis choices
      images/        only the shown images, case_001.png ... (neutral names, one format)
      key.json       SECRET: which case is which (original id, attack, parameters, true
                     label, the model's answer on the shown image). Keep it from readers.
      answers/       one <reader>.jsonl per reader (see answers.py)

Nothing here imports numpy, torch or Qt: the GUI's reader session opens a study with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUDY_FORMAT = "workbench-reader-study/1"
KEY_FORMAT = "workbench-reader-study-key/1"
AUTHENTIC = ("real", "manipulated")
CONFIDENCE = (1, 2, 3, 4, 5)
# Said to readers too, in study.json: the same sentence for every image, so it gives
# nothing away, and nobody takes a study image for a patient's image.
PUBLIC_NOTICE = ("Research images for a reader study, not clinical images: do not use them "
                 "for any diagnosis and never copy them out of this folder.")
KEY_NOTICE = (
    "SECRET ANSWER KEY of a blinded reader study: keep this file from the readers (do not "
    "give them this folder with it; move it elsewhere until the study is scored). The study "
    "images were re-encoded without the DERIVED / derivation marking that the workbench's "
    "exports of manipulated images normally carry, so that originals and manipulated images "
    "look alike: they are not clinical images and must never leave the study folder.")


class StudyError(Exception):
    """The study cannot be built, opened or scored; the message says why (one line)."""


class StudyCancelled(Exception):  # noqa: N818
    """The user cancelled building the study; nothing was left behind."""


def questions(class_names: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The questions every case asks, in the order a reader answers them."""
    return [
        {"id": "authentic", "text": "Is this image real or manipulated?",
         "choices": list(AUTHENTIC)},
        {"id": "diagnosis", "text": "What is the diagnosis?", "choices": list(class_names)},
        {"id": "confidence", "text": "How confident are you (1 = guessing, 5 = certain)?",
         "choices": list(CONFIDENCE)},
    ]


@dataclass(frozen=True)
class Study:
    """The public part of a study: all a reader session may know."""

    folder: Path
    cases: tuple[str, ...]  # reading order
    images: dict[str, str]  # case -> path relative to the folder
    blocks: tuple[tuple[str, ...], ...]  # reading sessions, in order (a break between)
    class_names: tuple[str, ...]
    questions: tuple[dict[str, Any], ...]
    notice: str

    def image_path(self, case: str) -> Path:
        if case not in self.images:
            raise StudyError(f"{self.folder}: no case {case!r} in this study")
        return self.folder / self.images[case]

    def block_of(self, case: str) -> int:
        """The index of the reading session (block) the case belongs to."""
        return next(i for i, b in enumerate(self.blocks) if case in b)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Written whole or not at all (a crash leaves the previous file or none)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{path.parent}: not a reader study (no {path.name})") from None
    except (OSError, ValueError) as exc:
        raise StudyError(f"{path}: cannot read the {what} ({exc})") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: the {what} is not a JSON object")
    return data


def load_study(folder: str | os.PathLike[str]) -> Study:
    """The public part of the study in ``folder`` (never reads key.json)."""
    root = Path(folder)
    data = _read_json(root / "study.json", "study file")
    if data.get("format") != STUDY_FORMAT:
        raise StudyError(f"{root / 'study.json'}: not a {STUDY_FORMAT} file "
                         f"(format {data.get('format')!r})")
    try:
        cases = tuple(str(c) for c in data["cases"])
        images = {str(k): str(v) for k, v in data["images"].items()}
        blocks = tuple(tuple(str(c) for c in b) for b in data.get("blocks") or [cases])
        classes = tuple(str(c) for c in data["class_names"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise StudyError(f"{root / 'study.json'}: malformed ({exc!r})") from None
    if set(images) != set(cases) or sorted(c for b in blocks for c in b) != sorted(cases):
        raise StudyError(f"{root / 'study.json'}: its cases, images and sessions disagree")
    return Study(root, cases, images, blocks, classes,
                 tuple(data.get("questions") or questions(classes)),
                 str(data.get("notice", PUBLIC_NOTICE)))


def load_key(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The secret key: {"cases": {case: entry}, ...}; for scoring, never for readers."""
    root = Path(folder)
    key = _read_json(root / "key.json", "answer key")
    if key.get("format") != KEY_FORMAT or not isinstance(key.get("cases"), list):
        raise StudyError(f"{root / 'key.json'}: not a {KEY_FORMAT} file")
    key["by_case"] = {c["case"]: c for c in key["cases"]}
    return key
