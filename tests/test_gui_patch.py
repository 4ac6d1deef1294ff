"""Train a universal patch from the GUI on a few images (progress, cancel), then apply it
to the open image and see the result."""

from __future__ import annotations

TIMEOUT = 180_000


def test_train_patch_cancel_then_train_and_apply(qtbot, window, shared_data):
    w = window
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    folder = shared_data / "dermoscopy" / "isic" / "images"
    photos = [folder / f"ISIC_000000{i}.jpg" for i in range(4)]
    w.open_paths(photos)
    for p in photos:  # decode each (only decoded images can be attacked)
        w.study_list.select_path(str(p))
        qtbot.waitUntil(lambda p=p: w.study.get(str(p)).image is not None, timeout=TIMEOUT)
    w.study_list.selectAll()
    assert len(w.study_list.selected_paths()) == 4

    ap = w.attacks
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("universal-patch"))
    ap.form.set_value("steps", 100000)  # long enough that only Cancel ends it
    ap.form.set_value("patch_size", 32)
    ap.form.set_value("batch", 4)
    ap.run_selected.click()
    qtbot.waitUntil(lambda: ap.progress.value() > 0, timeout=TIMEOUT)
    ap.cancel_button.click()
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=30_000)
    assert "cancelled" in w.statusBar().currentMessage().lower()

    ap.form.set_value("steps", 30)
    ap.run_selected.click()
    qtbot.waitUntil(lambda: w.attacks.job is None and any(s.attack for s in w.study),
                    timeout=TIMEOUT)
    result = next(s.attack for s in w.study if s.attack)
    assert result.universal and result.n_images == 4
    patch_path = result.outcome.artifacts["patch_path"]
    assert w.result_view.titles[2].text() == "Learned patch"
    assert "Patch saved to" in w.result_view.verdict.text()

    # apply the saved patch to the open image
    target = str(photos[0])
    w.study_list.clearSelection()
    w.study_list.select_path(target)
    qtbot.waitUntil(lambda: w.study.current is not None and w.study.current.path == target,
                    timeout=TIMEOUT)
    for s in w.study:
        s.set_attack(None)
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("apply-patch"))
    ap.form.set_value("patch_file", patch_path)
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.study.get(target).attack is not None and w.attacks.job is None,
                    timeout=TIMEOUT)
    applied = w.study.get(target).attack.outcome
    assert applied.plugin == "apply-patch"
    assert float(applied.linf[0]) > 0.05  # a visible patch, not an imperceptible change
    assert w.tabs.currentWidget() is w.result_view
    assert w.result_view.heatmap.array is not None
