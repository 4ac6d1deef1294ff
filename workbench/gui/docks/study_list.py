"""The study list: every opened file, its state (queued, loading, loaded, failed), and
what it is once decoded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from ...imaging import MedicalImage

PATH_ROLE = Qt.ItemDataRole.UserRole


class StudyList(QTreeWidget):
    imageSelected = Signal(str)  # path

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(5)
        # short headings leave the width to the file names (full names in tooltips)
        self.setHeaderLabels(["File", "Mod.", "Size", "Fr.", "Provenance"])
        for col, tip in enumerate(("file (full path in its tooltip)", "modality",
                                   "columns × rows", "frames", "provenance badge")):
            self.headerItem().setToolTip(col, tip)
        self.setRootIsDecorated(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformRowHeights(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # fitted to the rows in view only: measuring all of them again on each change made
        # listing a folder of 2,000 files take 21 s on the GUI thread
        header.setResizeContentsPrecision(0)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._by_name: dict[str, list[str]] = {}  # file name -> the paths that have it
        # "ISIC_0000…jpg" hides which image it is; the middle is what names share
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.currentItemChanged.connect(self._on_current)

    def add_path(self, path: Path) -> QTreeWidgetItem:
        key = str(path)
        if key in self._items:
            return self._items[key]
        item = QTreeWidgetItem(self, [path.name, "", "", "", ""])
        item.setData(0, PATH_ROLE, key)
        item.setToolTip(0, key)
        self._items[key] = item
        same = self._by_name.setdefault(path.name, [])
        same.append(key)
        if len(same) > 1:  # two files of one name: the folder tells them apart
            for p in same:
                self._items[p].setText(0, f"{Path(p).parent.name}/{path.name}")
        return item

    def mark_header(self, path: str, summary: object) -> None:
        """Modality, size and frames from the header, until the decoded image says."""
        item = self._items.get(path)
        if item is None or summary is None or item.text(1) not in ("", "…"):
            return
        item.setText(1, summary.modality)
        item.setText(2, f"{summary.columns}×{summary.rows}")
        item.setText(3, str(summary.frames))

    def item_for(self, path: str) -> QTreeWidgetItem | None:
        return self._items.get(str(path))

    def paths(self) -> list[str]:
        return [self.topLevelItem(i).data(0, PATH_ROLE) for i in range(self.topLevelItemCount())]

    def selected_paths(self) -> list[str]:
        return [item.data(0, PATH_ROLE) for item in self.selectedItems()]

    def select_path(self, path: str) -> None:
        item = self._items.get(str(path))
        if item is not None:
            self.setCurrentItem(item)

    def mark_loaded(self, path: str, image: MedicalImage) -> None:
        item = self._items.get(path)
        if item is None:
            return
        item.setText(1, image.modality)
        item.setText(2, f"{image.columns}×{image.rows}")
        item.setText(3, str(image.n_frames))
        item.setForeground(0, QBrush())
        notes = "".join(f"\nnote: {n}" for n in image.load_notes)
        item.setToolTip(0, f"{path}\n{image.transfer_syntax_name} · {image.photometric}{notes}")

    def mark_failed(self, path: str, message: str) -> None:
        item = self._items.get(path)
        if item is None:
            return
        item.setText(1, "error")
        item.setForeground(0, QBrush(QColor(220, 70, 70)))
        item.setToolTip(0, message)

    def mark_provenance(self, path: str, text: str, colour: str, tooltip: str = "") -> None:
        """The provenance badge: signed and intact / re-encoded / tampered / unsigned."""
        item = self._items.get(path)
        if item is None:
            return
        item.setText(4, text)
        item.setForeground(4, QBrush(QColor(colour)))
        item.setToolTip(4, tooltip or text)

    def badge(self, path: str) -> str:
        item = self._items.get(path)
        return item.text(4) if item else ""

    def mark_loading(self, path: str) -> None:
        item = self._items.get(path)
        if item is not None and not item.text(1):
            item.setText(1, "…")

    def _on_current(self, current: QTreeWidgetItem | None, _previous) -> None:
        if current is not None:
            self.imageSelected.emit(current.data(0, PATH_ROLE))
