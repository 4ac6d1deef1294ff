"""A reviewer's pass over one image without the GUI: decode, verify, run the detectors,
and the case verdict, through the same session actions the window runs (on the calling
thread here). For scripts, the benchmarks and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import actions
from .image_session import ImageSession
from .study import Study


def review(path: str | Path, *, model: Any, detectors: list[Any], study: Study | None = None,
           model_name: str = "") -> tuple[ImageSession, Any]:
    """(the image's session, its CaseVerdict). ``detectors``: PluginInfos."""
    study = study if study is not None else Study()
    session = study.open(path)
    if session.image is None:
        actions.open_image(study, session).run()
    actions.verify(session).run()
    actions.detect(session, detectors, model, model_name or model.card.name).run()
    return session, session.findings.verdict(session.verification)
