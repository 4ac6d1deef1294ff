"""The Evaluate window on real data: start a tiny run, cancel it mid-run, resume it with
Start, and check the tables, the plots and that the resume recomputed nothing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt


def _column(table, title: str) -> int:
    for c in range(table.columnCount()):
        if table.horizontalHeaderItem(c).text() == title:
            return c
    raise AssertionError(f"no column {title}")


def test_evaluate_cancel_resume_and_results(window, qtbot, shared_data: Path, tmp_path: Path):
    from workbench.gui.evaluate_window import EvaluateWindow

    window.evaluate_action.trigger()  # the menu action, as a user would
    win = window.evaluation_window
    assert isinstance(win, EvaluateWindow) and win.isVisible()
    assert window.open_evaluation() is win  # one window, re-shown

    out = tmp_path / "run"
    win.data_edit.setText(str(shared_data / "dermoscopy" / "isic"))
    win.surrogate_box.setCurrentText("(none)")  # white-box rows only: fewer units
    win.split_box.setCurrentText("test")
    win.limit_spin.setValue(2)
    win.size_spin.setValue(48)
    win.batch_spin.setValue(2)
    win.out_edit.setText(str(out))
    win.set_checked(win.attack_list, [])
    form = win.select_attack("pgd")
    assert win.current_form() is form
    form.editors["steps"].setValue(2)  # through the generated form's own spin box
    win.set_checked(win.detector_list, ["feature-squeezing"])
    # the value survives highlighting another attack and coming back
    win.attack_list.setCurrentItem(win._item(win.attack_list, "fgsm"))
    assert win.current_form() is win.param_form("fgsm") and form.isHidden()
    assert win.param_form("pgd").values()["steps"] == 2
    spec = win.spec()
    assert [a["name"] for a in spec.attacks] == ["pgd"]
    assert spec.attacks[0]["params"]["steps"] == 2
    assert spec.detectors == [{"name": "feature-squeezing"}]
    assert spec.limit == 2 and spec.surrogate is None and spec.split == "test"

    # start, let at least one unit finish, cancel
    qtbot.mouseClick(win.start_button, Qt.MouseButton.LeftButton)
    assert win.is_running() and not win.start_button.isEnabled()
    qtbot.waitUntil(lambda: win._done >= 1 or not win.is_running(), timeout=120_000)
    assert win.is_running(), win.status_label.text()
    assert win._total == 4  # 2 clean batches + 2 pgd/white batches
    qtbot.mouseClick(win.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.is_running(), timeout=60_000)
    assert "cancelled" in win.status_label.text().lower(), win.status_label.text()
    kept = list((out / "units").glob("*.json"))
    assert 1 <= len(kept) < 4
    assert win.start_button.isEnabled() and win.table.rowCount() == 0

    # Start again with the same settings: resumes
    qtbot.mouseClick(win.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.is_running(), timeout=300_000)
    assert win.summary is not None, win.status_label.text()
    assert win.status_label.text().startswith("Done"), win.status_label.text()

    rows = {win.table.item(r, 0).text(): r for r in range(win.table.rowCount())}
    assert set(rows) == {"clean", "pgd/white"}
    acc = _column(win.table, "Accuracy [95% CI]")
    for cond in ("clean", "pgd/white"):
        assert win.table.item(rows[cond], acc).text().endswith("]")  # value [low, high]
        assert "%" in win.table.item(rows[cond], acc).text()
    assert win.table.item(rows["clean"], _column(win.table, "n")).text() == "4"
    assert win.detector_table.rowCount() == 1
    assert win.detector_table.item(0, 0).text() == "feature-squeezing"
    assert win.detector_table.item(0, 3).text() == "pgd/white"
    for name, label in win.plot_labels.items():
        assert (out / name).is_file()
        assert label.pixmap() is not None and not label.pixmap().isNull(), name

    computed = [line.split("\t")[0] for line in (out / "computed.log").read_text().splitlines()]
    assert len(computed) == len(set(computed)) == 4  # the resume recomputed nothing


def test_evaluate_reports_bad_input_without_crashing(window, qtbot, tmp_path: Path):
    win = window.open_evaluation()
    win.data_edit.setText(str(tmp_path / "missing"))
    win.out_edit.setText(str(tmp_path / "run"))
    win.set_checked(win.attack_list, [])
    win.set_checked(win.detector_list, [])
    qtbot.mouseClick(win.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.is_running(), timeout=60_000)
    assert win.status_label.text().startswith("Error:"), win.status_label.text()
    assert win.error_box is not None and win.error_box.isVisible()
    assert win.start_button.isEnabled()
    win.data_edit.setText("")
    assert not win.start()  # refused before any thread starts
    assert "data" in win.status_label.text()


def test_closing_the_window_cancels_the_run(window, qtbot, shared_data: Path, tmp_path: Path):
    win = window.open_evaluation()
    win.data_edit.setText(str(shared_data / "dermoscopy" / "isic"))
    win.surrogate_box.setCurrentText("(none)")
    win.limit_spin.setValue(1)
    win.size_spin.setValue(48)
    win.out_edit.setText(str(tmp_path / "run"))
    win.set_checked(win.detector_list, [])
    assert win.start()
    win.close()  # cancels and waits briefly for the worker to stop
    qtbot.waitUntil(lambda: not win.is_running(), timeout=60_000)
    assert not win.isVisible()
    assert "cancelled" in win.status_label.text().lower(), win.status_label.text()
    assert not (tmp_path / "run" / "summary.json").exists()
