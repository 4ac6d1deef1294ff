"""The metadata dock: a searchable tree of DICOM tags (sequences collapsible) or the
EXIF/photo properties of a photo."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

MAX_VALUE_CHARS = 160
BULK_KEYWORDS = {"PixelData", "FloatPixelData", "DoubleFloatPixelData", "OverlayData",
                 "LUTData", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
                 "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
                 "SegmentedGreenPaletteColorLookupTableData",
                 "SegmentedBluePaletteColorLookupTableData", "EncapsulatedDocument", "WaveformData"}


class MetadataPanel(QWidget):
    COLUMNS = ("Tag", "Name", "VR", "Value")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search tags, names or values…")
        self.search.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)

    # --- filling ----------------------------------------------------------------------------
    def show_metadata(self, metadata: Any) -> None:
        self.tree.clear()
        if metadata is None:
            return
        if isinstance(metadata, dict):
            self.tree.setHeaderLabels(["", "Property", "", "Value"])
            for key, value in metadata.items():
                QTreeWidgetItem(self.tree, ["", str(key), "", _short(value)])
        else:
            self.tree.setHeaderLabels(list(self.COLUMNS))
            meta = getattr(metadata, "file_meta", None)
            if meta:
                group = QTreeWidgetItem(self.tree, ["(0002,xxxx)", "File Meta Information", "", ""])
                self._add_dataset(group, meta)
            self._add_dataset(self.tree.invisibleRootItem(), metadata)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        # Long attribute names must not push the values out of sight.
        self.tree.setColumnWidth(1, min(self.tree.columnWidth(1), 210))
        if self.search.text():
            self.apply_filter(self.search.text())

    def _add_dataset(self, parent: QTreeWidgetItem, ds: Any) -> None:
        for elem in ds:
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            name = elem.name if elem.name else elem.keyword
            if elem.VR == "SQ":
                item = QTreeWidgetItem(parent, [tag, name, "SQ", f"{len(elem.value)} item(s)"])
                for i, child in enumerate(elem.value, start=1):
                    sub = QTreeWidgetItem(item, ["", f"Item {i}", "", ""])
                    self._add_dataset(sub, child)
            else:
                QTreeWidgetItem(parent, [tag, name, str(elem.VR), _element_value(elem)])

    # --- search -----------------------------------------------------------------------------
    def apply_filter(self, text: str) -> int:
        """Show only rows matching ``text`` (with their parents); returns the match count."""
        needle = text.strip().lower()
        root = self.tree.invisibleRootItem()
        matches = 0

        def visit(item: QTreeWidgetItem) -> bool:
            nonlocal matches
            own = not needle or any(needle in item.text(c).lower() for c in range(4))
            if own and needle:
                matches += 1
            child_visible = False
            for i in range(item.childCount()):
                child_visible |= visit(item.child(i))
            visible = own or child_visible
            item.setHidden(not visible)
            if needle and child_visible:
                item.setExpanded(True)
            return visible

        for i in range(root.childCount()):
            visit(root.child(i))
        return matches

    def visible_rows(self) -> list[tuple[str, str, str, str]]:
        out = []

        def visit(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if not child.isHidden():
                    out.append(tuple(child.text(c) for c in range(4)))
                    visit(child)

        visit(self.tree.invisibleRootItem())
        return out


def _element_value(elem: Any) -> str:
    if elem.keyword in BULK_KEYWORDS or elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        length = len(elem.value) if elem.value is not None else 0
        return f"<{length} bytes>"
    value = elem.value
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return _short("\\".join(str(v) for v in value))
    return _short(value)


def _short(value: Any) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
