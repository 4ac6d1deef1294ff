"""The Evaluate window on real data: start a tiny run, cancel it mid-run, resume it with
Start, and check the tables, the plots and that the resume recomputed nothing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from workbench.gui.evaluate.settings import find_item


def _column(table, title: str) -> int:
    for c in range(table.columnCount()):
        if table.horizontalHeaderItem(c).text() == title:
            return c
    raise AssertionError(f"no column {title}")


def test_evaluate_cancel_resume_and_results(window, qtbot, shared_data: Path, tmp_path: Path):
    from workbench.gui.evaluate import EvaluateWindow

    window.evaluate_action.trigger()  # the menu action, as a user would
    win = window.evaluation_window
    assert isinstance(win, EvaluateWindow) and win.isVisible()
    assert window.open_evaluation() is win  # one window, re-shown

    out = tmp_path / "run"
    win.settings.data_edit.setText(str(shared_data / "dermoscopy" / "isic"))
    win.settings.surrogate_box.setCurrentText("(none)")  # white-box rows only: fewer units
    win.settings.split_box.setCurrentText("test")
    win.settings.limit_spin.setValue(2)
    win.settings.size_spin.setValue(48)
    win.settings.batch_spin.setValue(2)
    win.settings.out_edit.setText(str(out))
    win.settings.set_checked(win.settings.attack_list, [])
    form = win.settings.select_attack("pgd")
    assert win.settings.current_form() is form
    form.editors["steps"].setValue(2)  # through the generated form's own spin box
    win.settings.set_checked(win.settings.detector_list, ["feature-squeezing"])
    # the value survives highlighting another attack and coming back
    win.settings.attack_list.setCurrentItem(find_item(win.settings.attack_list, "fgsm"))
    assert win.settings.current_form() is win.settings.param_form("fgsm") and form.isHidden()
    assert win.settings.param_form("pgd").values()["steps"] == 2
    spec = win.settings.spec()
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
    assert win.start_button.isEnabled() and win.results.table.rowCount() == 0

    # Start again with the same settings: resumes
    qtbot.mouseClick(win.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.is_running(), timeout=300_000)
    assert win.summary is not None, win.status_label.text()
    assert win.status_label.text().startswith("Done"), win.status_label.text()

    rows = {win.results.table.item(r, 0).text(): r for r in range(win.results.table.rowCount())}
    assert set(rows) == {"clean", "pgd/white"}
    acc = _column(win.results.table, "Accuracy [95% CI]")
    for cond in ("clean", "pgd/white"):
        assert win.results.table.item(rows[cond], acc).text().endswith("]")  # value [low, high]
        assert "%" in win.results.table.item(rows[cond], acc).text()
    assert win.results.table.item(rows["clean"], _column(win.results.table, "n")).text() == "4"
    # the unrounded tensors' accuracy beside the saved pictures': a dash for clean
    before = _column(win.results.table, "Before rounding")
    assert win.results.table.item(rows["clean"], before).text() == "–"
    assert win.results.table.item(rows["pgd/white"], before).text().endswith("%")
    assert win.results.detector_table.rowCount() == 1
    assert win.results.caption.text().startswith("model demo")  # whose figures these are
    assert win.results.detector_table.item(0, 0).text() == "feature-squeezing"
    assert win.results.detector_table.item(0, 3).text() == "pgd/white"
    for name, label in win.results.plot_labels.items():
        assert (out / name).is_file()
        assert label.pixmap() is not None and not label.pixmap().isNull(), name

    computed = [line.split("\t")[0] for line in (out / "computed.log").read_text().splitlines()]
    assert len(computed) == len(set(computed)) == 4  # the resume recomputed nothing


def test_evaluate_reports_bad_input_without_crashing(window, qtbot, tmp_path: Path):
    win = window.open_evaluation()
    win.settings.data_edit.setText(str(tmp_path / "missing"))
    win.settings.out_edit.setText(str(tmp_path / "run"))
    win.settings.set_checked(win.settings.attack_list, [])
    win.settings.set_checked(win.settings.detector_list, [])
    qtbot.mouseClick(win.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.is_running(), timeout=60_000)
    assert win.status_label.text().startswith("Error:"), win.status_label.text()
    assert win.error_box is not None and win.error_box.isVisible()
    assert win.start_button.isEnabled()
    win.settings.data_edit.setText("")
    assert not win.start()  # refused before any thread starts
    assert "data" in win.status_label.text()


def test_closing_the_window_cancels_the_run(window, qtbot, shared_data: Path, tmp_path: Path):
    win = window.open_evaluation()
    win.settings.data_edit.setText(str(shared_data / "dermoscopy" / "isic"))
    win.settings.surrogate_box.setCurrentText("(none)")
    win.settings.limit_spin.setValue(1)
    win.settings.size_spin.setValue(48)
    win.settings.out_edit.setText(str(tmp_path / "run"))
    win.settings.set_checked(win.settings.detector_list, [])
    assert win.start()
    win.close()  # cancels and waits briefly for the worker to stop
    qtbot.waitUntil(lambda: not win.is_running(), timeout=60_000)
    assert not win.isVisible()
    assert "cancelled" in win.status_label.text().lower(), win.status_label.text()
    assert not (tmp_path / "run" / "summary.json").exists()


def test_the_sweep_tab_runs_a_sweep_and_shows_du_harpurs_lines(window, qtbot,
                                                                 shared_data: Path,
                                                                 tmp_path: Path):
    """Tools > Evaluate > Robustness sweep: a colour sweep on a few ISIC test images, with
    progress, the key lines in Du-Harpur's form and the plot, from the files it wrote."""
    import json

    from workbench.evaluation.sweep import SweepSpec

    window.evaluate_action.trigger()
    win = window.evaluation_window
    win.tabs.setCurrentWidget(win.sweep)
    panel = win.sweep
    panel.out.setText(str(tmp_path / "sweep"))
    spec = SweepSpec(model="demo", data=str(shared_data / "dermoscopy" / "isic"),
                     split="test", limit=3, transforms=("colour",),
                     grids={"colour": [-10, 0, 10]})
    job = panel.start(spec)
    assert job is not None and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.result is not None or "color:#c62828" in
                    panel.status.text(), timeout=300_000)
    assert panel.result is not None, panel.status.text()
    assert panel.start_button.isEnabled() and not panel.progress.isVisible()
    written = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert written["baseline"] == json.loads(json.dumps(panel.result["baseline"]))
    assert "green −10: false negatives" in panel.lines.text()
    assert panel.plots.count() == 1 and panel.plots.tabText(0) == "colour"
    assert panel.plots.widget(0).source is not None  # the PNG is on screen
    assert "6 images" in panel.status.text()
