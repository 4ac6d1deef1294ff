"""Help > First Steps, Mouse and Keys, About: short pages a new reviewer reads in a
minute, and what is installed (versions, the model cards and what each model fits)."""

from __future__ import annotations

import html
import platform

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

FIRST_STEPS = """<h3>First steps</h3><ol>
<li><b>Open</b> a DICOM file, a photo or a folder (File ▸ Open, or drop it on the window).
Each image is checked against its capture record at once: the badge in the Study list and
the Provenance dock say whether it is signed and intact.</li>
<li><b>Choose a model</b> in the Model dock. It answers only on images its card says it
was trained on; on any other image it says why it gives no diagnosis.</li>
<li><b>Run the detectors</b> (Detectors dock). The banner above the image gives one
verdict: the capture record decides when there is one; otherwise the calibrated detectors
(together about 5% false alarms on clean images). "No detector fired" is not proof.</li>
<li><b>Compare</b> a suspect with its original (Compare tab) to see where and how much
the pixels differ; click a detector row marked ▣ to see its evidence map.</li>
<li><b>Report</b>: File ▸ Export Report (HTML or PDF) of the selected images; File ▸
Export Evidence as DICOM writes the compared pair's perturbation map and changed pixels
as DICOM objects, and stores them to a PACS on request.</li>
<li><b>From the archive</b>: File ▸ Open from PACS finds studies on a DICOMweb archive
and opens a series as the archive stores it.</li>
<li>Researchers: the Attack dock runs any attack plugin; Tools ▸ Evaluate measures a model
and the detectors over a data set (Table 1), and sweeps one transformation at a time
(Robustness sweep); Study ▸ Reader Study runs a blinded reader session on a study made
by <code>workbench study new</code>.</li></ol>"""

MOUSE_AND_KEYS = """<h3>Mouse and keys</h3><table>
<tr><td>left drag</td><td>window / level (horizontal: width, vertical: centre)</td></tr>
<tr><td>middle drag</td><td>pan</td></tr>
<tr><td>right drag, Ctrl + wheel</td><td>zoom</td></tr>
<tr><td>wheel</td><td>next / previous frame</td></tr>
<tr><td>double-click, F</td><td>fit to window</td></tr>
<tr><td>1</td><td>100% (one image pixel per screen pixel)</td></tr>
<tr><td>R</td><td>the file's own window</td></tr>
<tr><td>I</td><td>invert (display only)</td></tr>
<tr><td>] and [, H, V</td><td>rotate right / left 90°, flip horizontal / vertical (display
only: read-outs and measurements name stored pixels)</td></tr>
<tr><td>Shift + left drag, M</td><td>measure a distance (in mm where the header gives the
pixel spacing); M makes a plain left drag measure; Esc clears</td></tr>
<tr><td>Ctrl+Shift+H</td><td>hide patient identifiers in the corner text</td></tr>
<tr><td>Ctrl+O, Ctrl+Shift+O</td><td>open file, open folder</td></tr>
<tr><td>Ctrl+Shift+S, Ctrl+Shift+V</td><td>sign, verify the current image</td></tr>
<tr><td>Ctrl+E</td><td>export report</td></tr></table>"""


def about_text() -> str:
    """Versions and the shipped model cards with what each fits."""
    import PySide6

    from ... import __version__
    from ...models.card import ModelCard, ModelLoadError
    from ...models.zoo import NAMED, resolve_card

    rows = []
    for name in NAMED:
        try:
            card = ModelCard.load(resolve_card(name))
        except ModelLoadError as exc:
            rows.append(f"<li>{html.escape(name)}: {html.escape(str(exc))}</li>")
            continue
        fits = card.fits.description or "(its card does not say: no diagnosis anywhere)"
        acc = card.metrics.get("accuracy")
        quality = f", test accuracy {acc:.3f}" if isinstance(acc, float) else ""
        rows.append(f"<li><b>{html.escape(name)}</b> ({html.escape(card.architecture)}"
                    f"{quality}): fits {html.escape(fits)}</li>")
    return (f"<h3>workbench {html.escape(__version__)}</h3>"
            "<p>A forensics workbench for medical images under adversarial attack. The "
            "demo models are for attack research only, never for diagnosis.</p>"
            f"<p>Python {platform.python_version()}, PySide6 {PySide6.__version__}</p>"
            f"<p>Models:</p><ul>{''.join(rows)}</ul>")


def show_page(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A non-blocking page (open(), not exec()) so tests and the event loop go on."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.open()
    return box
