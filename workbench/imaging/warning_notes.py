"""Library warnings as notes on the file they concern.

pydicom warns about invalid values lazily, when an element is first read, so a warning
can come from anywhere a dataset is touched: while loading, describing, fingerprinting or
signing. Each command catches them around its work on one file and prints them under that
file's name instead of letting Python print ``valuerep.py:440: UserWarning: …`` with no
file at all.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def unique_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    """Each distinct warning as one line (its whitespace collapsed), in order."""
    out: list[str] = []
    for w in caught:
        text = " ".join(str(w.message).split())
        if text and text not in out:
            out.append(text)
    return out


@contextmanager
def warnings_as_notes() -> Iterator[list[str]]:
    """Run the block catching every warning; the yielded list holds their texts on exit."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield notes
        finally:
            notes.extend(unique_texts(caught))
