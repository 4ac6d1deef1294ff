"""The key manager: own signing keys and the trust store, plus the passphrase prompts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...provenance.records import keys


def ask_passphrase(parent: QWidget | None, key: keys.KeyInfo) -> str | None:
    """The passphrase of ``key``: $WORKBENCH_KEY_PASSPHRASE when set (scripted sessions),
    else a password prompt. None when the user cancels."""
    env = keys.passphrase_from_env_or_file(None)
    if env:
        return env
    text, ok = QInputDialog.getText(
        parent, "Unlock signing key",
        f"Passphrase for key {key.short} ({key.label or 'no label'}):",
        QLineEdit.EchoMode.Password)
    return text if ok else None


class NewKeyDialog(QDialog):
    """Label and passphrase (twice) for a new key."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New signing key")
        self.label = QLineEdit(placeholderText="e.g. CR room 3, St Mary's")
        self.passphrase = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #d23c3c")
        form = QFormLayout(self)
        form.addRow("Label", self.label)
        form.addRow("Passphrase", self.passphrase)
        form.addRow("Repeat", self.repeat)
        form.addRow(self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        form.addRow(self.buttons)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.created: keys.KeyInfo | None = None

    def _accept(self) -> None:
        if not self.passphrase.text():
            self.problem.setText("A passphrase is required: it encrypts the private key.")
            return
        if self.passphrase.text() != self.repeat.text():
            self.problem.setText("The two passphrases differ.")
            return
        self.created = keys.generate_key(self.passphrase.text(), self.label.text().strip())
        self.accept()


class KeyManagerDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keys and trust store")
        self.resize(760, 460)
        self.own = QTreeWidget()
        self.own.setHeaderLabels(["Default", "Label", "Fingerprint", "Created"])
        self.trusted = QTreeWidget()
        self.trusted.setHeaderLabels(["Label", "Fingerprint", "Added"])
        for tree in (self.own, self.trusted):
            tree.setRootIsDecorated(False)
        new_btn = QPushButton("New key…")
        default_btn = QPushButton("Make default")
        export_btn = QPushButton("Export public key…")
        trust_btn = QPushButton("Trust a public key…")
        untrust_btn = QPushButton("Remove trust")
        own_row, trust_row = QHBoxLayout(), QHBoxLayout()
        for b in (new_btn, default_btn, export_btn):
            own_row.addWidget(b)
        for b in (trust_btn, untrust_btn):
            trust_row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Your signing keys</b> (private keys encrypted with your "
                                "passphrase)"))
        layout.addWidget(self.own)
        layout.addLayout(own_row)
        layout.addWidget(QLabel("<b>Trusted keys</b> (signatures by these keys are accepted)"))
        layout.addWidget(self.trusted)
        layout.addLayout(trust_row)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        new_btn.clicked.connect(self.new_key)
        default_btn.clicked.connect(self.make_default)
        export_btn.clicked.connect(self.export_key)
        trust_btn.clicked.connect(self.trust_key)
        untrust_btn.clicked.connect(self.untrust_key)
        self.refresh()

    def refresh(self) -> None:
        self.own.clear()
        self.trusted.clear()
        default = keys.default_key_fingerprint()
        for k in keys.list_keys():
            QTreeWidgetItem(self.own, ["★" if k.fingerprint == default else "", k.label,
                                       k.fingerprint, k.created])
        for k in keys.trusted_keys():
            QTreeWidgetItem(self.trusted, [k.label, k.fingerprint, k.created])
        for tree in (self.own, self.trusted):
            for c in range(tree.columnCount()):
                tree.resizeColumnToContents(c)

    def _selected(self, tree: QTreeWidget, column: int) -> str | None:
        item = tree.currentItem()
        return item.text(column) if item else None

    def new_key(self) -> keys.KeyInfo | None:
        dialog = NewKeyDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.refresh()
            return dialog.created
        return None

    def make_default(self) -> None:
        fp = self._selected(self.own, 2)
        if fp:
            keys.set_default_key(fp)
            self.refresh()

    def export_key(self) -> None:
        fp = self._selected(self.own, 2)
        if not fp:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Export public key", f"{fp[:16]}.pem",
                                              "PEM (*.pem)")
        if name:
            Path(name).write_bytes(keys.export_public_key_pem(fp))

    def trust_key(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Public key to trust", "",
                                              "Public keys (*.pem *.pub *.txt);;All (*)")
        if not name:
            return
        label, ok = QInputDialog.getText(self, "Trust key", "Whose key is it (device, site)?")
        if not ok:
            return
        try:
            keys.trust_key(Path(name), label.strip() or Path(name).stem)
        except (keys.KeyStoreError, OSError) as exc:
            QMessageBox.warning(self, "Cannot trust this key", f"{name}: {exc}")
        self.refresh()

    def untrust_key(self) -> None:
        fp = self._selected(self.trusted, 1)
        if fp:
            keys.untrust_key(fp)
            self.refresh()
