"""The first-run dialog: offer to create a signing key, once.

Asked only from the real start path (app.run_gui), never from the MainWindow
constructor, so tests and scripted runs are never blocked by a modal dialog.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QWidget

from ...home import keys_dir
from ...provenance.records import keys
from ..settings import first_run_done, set_first_run_done
from .key_manager import NewKeyDialog


def first_run_needed() -> bool:
    """True on a first start: no own signing key yet, and the question not yet answered."""
    return not first_run_done() and not keys.list_keys()


class FirstRunDialog(NewKeyDialog):
    """The key manager's new-key form (same fields, same checks, same keys API) with a
    welcome text and Create key / Skip. Closing it in any way answers the question."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to workbench")
        self.setMinimumWidth(520)
        intro = QLabel(
            "<b>Create a signing key?</b><br>Signing an image records who vouched for it, "
            "so that any later change to its pixels or metadata can be detected. The key "
            f"pair is kept in <tt>{keys_dir()}</tt>; its private half is encrypted with "
            "the passphrase you choose, and its public half is added to your trust store."
            "<br><br>You can skip this and create a key later under "
            "<i>Provenance › Keys and Trust Store</i>.")
        intro.setWordWrap(True)
        form = self.layout()
        form.insertRow(0, intro)  # NewKeyDialog's layout is a QFormLayout
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.skip_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.create_button.setText("Create key")
        self.skip_button.setText("Skip")
        # The wrapped intro makes the default size too tall (it is computed for a narrower
        # width); size the dialog for the width it is shown at instead.
        self.resize(520, form.totalHeightForWidth(520))

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        # Created, skipped or closed: the user has answered, so do not ask on the next start.
        set_first_run_done(True)
        super().done(result)


def run_first_run(parent: QWidget | None = None) -> keys.KeyInfo | None:
    """Ask (modally) when first_run_needed(); the new key, or None (skipped, or not asked)."""
    if not first_run_needed():
        return None
    dialog = FirstRunDialog(parent)
    if dialog.exec() == QDialog.DialogCode.Accepted:
        return dialog.created
    return None
