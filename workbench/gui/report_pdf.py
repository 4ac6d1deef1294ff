"""HTML case report -> PDF with Qt's own writer (QTextDocument + QPdfWriter)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QMarginsF, QSizeF
from PySide6.QtGui import QGuiApplication, QPageLayout, QPageSize, QPdfWriter, QTextDocument


def html_to_pdf(html: str, path: str | Path) -> Path:
    """Write ``html`` (inline data-URI images allowed) as an A4 PDF."""
    if QGuiApplication.instance() is None:
        # headless use (the CLI): Qt needs an application; no display is required
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        html_to_pdf._app = QGuiApplication([])  # type: ignore[attr-defined]
    path = Path(path)
    writer = QPdfWriter(str(path))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
    writer.setResolution(150)
    doc = QTextDocument()
    doc.setHtml(html)
    layout = writer.pageLayout().paintRectPixels(writer.resolution())
    doc.setPageSize(QSizeF(layout.width(), layout.height()))
    doc.print_(writer)
    return path
