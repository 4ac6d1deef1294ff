"""Labelled datasets: a folder with a labels CSV, a CSV on its own, or class subfolders.

A labels CSV has one column naming the image file (``image``, ``path``, ``file`` or
``filename``, relative to the CSV's folder) and one whose values are the model's class
names (``label``, ``class``, ``diagnosis``, or the first column that fits; the format of
the ISIC export in ``../shared/data/dermoscopy/isic/labels.csv`` is one such). Rows whose
label is not one of the model's classes are skipped and counted, never guessed.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

PATH_COLUMNS = ("image", "path", "file", "filename")
LABEL_COLUMNS = ("label", "class", "diagnosis")
ID_COLUMNS = ("isic_id", "id", "image_id")


class DatasetError(Exception):
    """The dataset cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Item:
    id: str
    path: str
    label: int


@dataclass
class Dataset:
    source: str
    class_names: tuple[str, ...]
    items: list[Item]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def fingerprint(self) -> str:
        """SHA-256 over the items' ids, labels and file contents: two runs over the
        same bytes with the same labels have the same fingerprint."""
        h = hashlib.sha256()
        for it in self.items:
            h.update(f"{it.id}\0{it.label}\0".encode())
            with open(it.path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        return h.hexdigest()

    def counts(self) -> dict[str, int]:
        return {n: sum(1 for it in self.items if it.label == i)
                for i, n in enumerate(self.class_names)}


def load_dataset(source: str | os.PathLike[str], class_names: tuple[str, ...], *,
                 label_column: str | None = None, ids: set[str] | None = None,
                 limit: int | None = None) -> Dataset:
    """Read a dataset whose labels are ``class_names`` (the model card's). ``ids``: keep
    only these item ids (a model card's test split); ``limit``: the first ``limit`` items
    per class (sorted by id), for quick runs that stay balanced."""
    src = Path(source)
    if not src.exists():
        raise DatasetError(f"{src}: no such file or folder")
    if src.is_file():
        items, skipped = _from_csv(src, class_names, label_column)
    else:
        csvs = sorted(src.glob("*.csv"))
        if len(csvs) > 1:
            labels = [c for c in csvs if c.name == "labels.csv"]
            if not labels:
                raise DatasetError(f"{src}: several CSV files "
                                   f"({', '.join(c.name for c in csvs)}); name one with --data")
            csvs = labels
        items, skipped = (_from_csv(csvs[0], class_names, label_column) if csvs
                          else _from_folders(src, class_names))
    if ids is not None:
        missing = len(ids - {it.id for it in items})
        items = [it for it in items if it.id in ids]
        if missing:
            skipped["not in the dataset although in the split"] = missing
    items.sort(key=lambda it: (it.id, it.path))
    if limit is not None:
        per: dict[int, int] = {}
        kept = []
        for it in items:
            if per.get(it.label, 0) < limit:
                per[it.label] = per.get(it.label, 0) + 1
                kept.append(it)
        items = kept
    if not items:
        raise DatasetError(f"{src}: no labelled images with labels among "
                           f"{list(class_names)}" + (f" (skipped: {skipped})" if skipped else ""))
    return Dataset(str(src), tuple(class_names), items, skipped)


def _pick(columns: list[str], preferred: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[p] for p in preferred if p in lower), None)


def _from_csv(path: Path, class_names: tuple[str, ...], label_column: str | None
              ) -> tuple[list[Item], dict[str, int]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the labels CSV ({exc})") from None
    if not rows:
        raise DatasetError(f"{path}: the labels CSV has no rows")
    columns = list(rows[0])
    path_col = _pick(columns, PATH_COLUMNS)
    if path_col is None:
        raise DatasetError(f"{path}: no image column (one of {', '.join(PATH_COLUMNS)})")
    names = set(class_names)
    if label_column is not None:
        if label_column not in columns:
            raise DatasetError(f"{path}: no column {label_column!r} (columns: {columns})")
        label_col = label_column
    else:
        fits = [c for c in columns if c != path_col and {r[c] for r in rows} & names]
        label_col = _pick(fits, LABEL_COLUMNS) or (fits[0] if fits else None)
        if label_col is None:
            raise DatasetError(f"{path}: no column holds the model's classes "
                               f"{list(class_names)}; name one with --label-column")
    id_col = _pick(columns, ID_COLUMNS)
    items, skipped = [], {}
    for r in rows:
        label = r[label_col].strip()
        file = path.parent / r[path_col]
        if label not in names:
            reason = f"label {label!r} is not a model class"
            skipped[reason] = skipped.get(reason, 0) + 1
        elif not file.is_file():
            skipped["image file missing"] = skipped.get("image file missing", 0) + 1
        else:
            items.append(Item(r[id_col] if id_col else file.stem, str(file),
                              class_names.index(label)))
    return items, skipped


def _from_folders(root: Path, class_names: tuple[str, ...]
                  ) -> tuple[list[Item], dict[str, int]]:
    from ..imaging.loader import find_images

    items = []
    found = [d for d in class_names if (root / d).is_dir()]
    if not found:
        raise DatasetError(f"{root}: no labels CSV and no class subfolders named after the "
                           f"model's classes {list(class_names)}")
    for label, name in enumerate(class_names):
        if (root / name).is_dir():
            items += [Item(f"{name}/{p.relative_to(root / name)}", str(p), label)
                      for p in find_images(root / name)]
    return items, {}
