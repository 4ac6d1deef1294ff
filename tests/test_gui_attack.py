"""The attack workflow in the real window: demo model, PGD from the generated form on a
real dermoscopy photo, the result view with its heatmap, saving, and misbehaving plugins."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.gui.main_window import MainWindow

TIMEOUT = 120_000


def load_demo_model(qtbot, w):
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)


def open_and_wait(qtbot, w, path):
    w.open_paths([path])
    qtbot.waitUntil(lambda: w.view.image is not None and str(w.view.image.path) == str(path),
                    timeout=TIMEOUT)


def test_pgd_from_the_form_flips_the_prediction_and_shows_the_heatmap(qtbot, window,
                                                                      shared_data, tmp_path,
                                                                      monkeypatch):
    w = window
    load_demo_model(qtbot, w)
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    open_and_wait(qtbot, w, photo)
    qtbot.waitUntil(lambda: w.models.prediction.topLevelItemCount() == 2,
                    timeout=TIMEOUT)
    clean_class = w.models.predicted_class()
    ap = w.attacks
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("pgd"))
    assert ap.form.editors["eps"].value() == pytest.approx(0.01)  # seed default, from Params
    ap.form.set_value("eps", 0.03)  # a stronger budget keeps the test independent of luck
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.study.get(str(photo)).attack is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=TIMEOUT)
    result = w.study.get(str(photo)).attack
    info = result.outcome.per_image(w.study.model.class_names)[0]
    assert info["clean_class"] == clean_class
    assert info["adversarial_class"] != clean_class and info["success"]
    assert info["linf"] <= 0.03 + 1e-6
    view = w.result_view
    assert w.tabs.currentWidget() is view
    assert view.titles[1].text() == f"Adversarial: {info['adversarial_class']}"
    heat = view.heatmap.array
    assert heat is not None and heat.shape[:2] == (767, 1022) and heat.std() > 1
    view.opacity.setValue(0)  # no heatmap: the adversarial image itself
    assert np.array_equal(view.heatmap.array, view.adversarial.array)
    saved = w.save_adversarial(str(tmp_path / "adv.png"))
    assert saved and saved.endswith(".png")
    assert saved in w.study_list.paths()
    # the button itself (it once passed Qt's checked=False as the file name and did nothing)
    from PySide6.QtWidgets import QFileDialog

    from workbench.imaging.loader import load_image

    target = tmp_path / "from_button.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    w.study_list.select_path(str(photo))  # saving opened the copy; back to the attacked photo
    qtbot.waitUntil(lambda: view.result is result, timeout=TIMEOUT)
    view.save_button.click()
    assert target.is_file() and str(target) in w.study_list.paths()
    again, original = load_image(target), load_image(photo)
    assert again.pixels.shape == original.pixels.shape
    changed = np.abs(again.pixels.astype(int) - original.pixels.astype(int))
    assert 0 < changed.max() <= round(0.03 * 255) + 1  # the adversarial pixels, within eps


BROKEN = '''
from dataclasses import dataclass
from workbench.api import Attack, AttackResult, param

class Raises(Attack):
    name = "raises"
    summary = "always raises"
    @dataclass
    class Params:
        pass
    def run(self, model, images, labels, target, params, ctx):
        raise RuntimeError("boom from the plugin")

class Loops(Attack):
    name = "loops"
    summary = "iterates until cancelled"
    @dataclass
    class Params:
        pass
    def run(self, model, images, labels, target, params, ctx):
        i = 0
        while True:
            ctx.check_cancelled()
            ctx.progress(0.5, f"iteration {i}")
            model(images)
            i += 1
'''


def test_misbehaving_plugins_leave_the_window_working(qtbot, shared_data, _private_home):
    from workbench.home import user_plugins_dir

    (user_plugins_dir() / "bad.py").write_text(BROKEN)
    (user_plugins_dir() / "worse.py").write_text("import not_a_module_here\n")
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    ap = w.attacks
    qtbot.waitUntil(lambda: ap.plugin_box.count() > 0)  # listed right after the first paint
    assert "worse" in ap.broken.text() and "No module named" in ap.broken.toolTip()
    load_demo_model(qtbot, w)
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000001.jpg"
    open_and_wait(qtbot, w, photo)

    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("raises"))
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.error_box is not None, timeout=TIMEOUT)
    assert "boom from the plugin" in w.error_box.text()
    w.error_box.accept()
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=TIMEOUT)

    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("loops"))
    ap.run_current.click()
    qtbot.waitUntil(lambda: "iteration 2" in ap.progress.format(), timeout=TIMEOUT)
    ap.cancel_button.click()
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=10_000)  # within an iteration
    assert "cancelled" in w.statusBar().currentMessage().lower()
    # and the window still works: another image opens and is classified
    other = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000003.jpg"
    open_and_wait(qtbot, w, other)
    w.close()


def test_score_based_attack_result_names_its_queries(qtbot, window, shared_data):
    """A black-box attack is judged by its model queries, so the result header says them."""
    w = window
    load_demo_model(qtbot, w)
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000003.jpg"
    open_and_wait(qtbot, w, photo)
    ap = w.attacks
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("colour-balance"))
    ap.form.set_value("popsize", 4)
    ap.form.set_value("generations", 1)
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.study.get(str(photo)).attack is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=TIMEOUT)
    info = w.study.get(str(photo)).attack.outcome.per_image(w.study.model.class_names)[0]
    assert info["queries"] and f"{info['queries']} queries" in w.result_view.verdict.text()


DEAF = '''
import time
from dataclasses import dataclass
from workbench.api import Attack, AttackResult


class Deaf(Attack):
    name = "deaf"
    summary = "never checks for cancel"

    @dataclass
    class Params:
        pass

    def run(self, model, images, labels, target, params, ctx):
        ctx.progress(0.1, "working")
        time.sleep(6)  # no ctx.check_cancelled(): cancel cannot reach it
        return AttackResult(images)
'''


def test_a_plugin_that_ignores_cancel_frees_the_panel_and_its_result_is_dropped(
        qtbot, shared_data, _private_home):
    from workbench.home import user_plugins_dir

    (user_plugins_dir() / "deaf.py").write_text(DEAF)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    ap = w.attacks
    qtbot.waitUntil(lambda: ap.plugin_box.findData("deaf") >= 0, timeout=TIMEOUT)
    load_demo_model(qtbot, w)
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000001.jpg"
    open_and_wait(qtbot, w, photo)
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("deaf"))
    ap.run_current.click()
    qtbot.waitUntil(lambda: "working" in ap.progress.format(), timeout=TIMEOUT)
    ap.cancel_button.click()
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=5_000)  # not after 6 s
    assert "does not check for it" in w.statusBar().currentMessage()
    assert ap.run_current.isEnabled()
    job = next(iter(w.runner.jobs()))  # still running in the background
    qtbot.waitUntil(lambda: job not in w.runner.jobs(), timeout=TIMEOUT)
    assert w.study.current.attack is None  # its late result was dropped
    w.close()
