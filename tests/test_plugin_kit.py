"""The plugin kit: ``workbench plugin new`` templates that work as written, ``workbench
plugin check`` naming each problem of a broken plugin, the generated API reference, the
entry-point example package, and a new plugin in the real window's attack list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, pydicom_test_file

from workbench.api import params_problems
from workbench.cli import main
from workbench.plugin_kit.check import forbidden_imports

TIMEOUT = 120_000


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The test machine is shared: with every core busy, OpenMP's spinning worker threads
    make a small backward pass up to 100x slower. One intra-op thread keeps the runs here
    (a few milliseconds each) from stalling; the previous setting comes back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def new(tmp_path: Path, name: str, kind: str, capsys: pytest.CaptureFixture) -> Path:
    assert main(["plugin", "new", name, "--kind", kind, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    plugin_file = tmp_path / f"{name.replace('-', '_')}.py"
    assert f"wrote {plugin_file}" in out and f"plugin check {plugin_file}" in out
    return plugin_file


# --- plugin new + plugin check on the templates -------------------------------------------
def test_templates_pass_check_unchanged_and_their_tests_pass(tmp_path, capsys):
    attack = new(tmp_path, "kit-attack", "attack", capsys)
    detector = new(tmp_path, "kit-detector", "detector", capsys)
    text = attack.read_text()
    for part in ('name = "kit-attack"', "class KitAttack(Attack):", "Paper it follows",
                 "Threat model", "@dataclass", "param(0.01, min=0.0, max=1.0",
                 "ctx.check_cancelled()", "ctx.generator"):
        assert part in text
    assert 'needs = ("model",)' in detector.read_text()
    assert forbidden_imports(text) == [] and forbidden_imports(detector.read_text()) == []

    assert main(["plugin", "check", str(attack)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.rstrip().endswith("checks: all passed")
    for line in ("PASS  import:", "PASS  imports:", "PASS  kit-attack declaration:",
                 "PASS  kit-attack parameters: eps = 0.01 in [0.0, 1.0]; steps = 5",
                 "PASS  kit-attack run: CT_small.dcm (1 x 1 x 128 x 128): output "
                 "(1, 1, 128, 128)", "PASS  kit-attack run: 2 synthetic RGB photos",
                 "PASS  kit-attack seed:", "PASS  kit-attack cancel: Cancel pressed after "
                 "its first model call;"):
        assert line in out, out

    assert main(["plugin", "check", str(detector), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["failed"] == 0
    checks = {(c["check"], c["status"]) for c in report["checks"]}
    assert {("declaration", "PASS"), ("analyze", "PASS"), ("seed", "PASS"),
            ("cancel", "PASS")} <= checks
    analyze = next(c for c in report["checks"] if c["check"] == "analyze")
    assert analyze["details"]["model_calls"] == 5 and analyze["details"]["evidence_shape"] is None

    # The generated tests, as the researcher runs them: a fresh interpreter, in the folder.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_kit_attack.py", "test_kit_detector.py"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "8 passed" in run.stdout


def test_new_refuses_to_overwrite_and_bad_names(tmp_path, capsys):
    new(tmp_path, "once", "attack", capsys)
    before = (tmp_path / "once.py").read_text()
    for argv in (["plugin", "new", "once", "--dir", str(tmp_path)],
                 ["plugin", "new", "Not A Name", "--dir", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
    assert (tmp_path / "once.py").read_text() == before  # untouched
    assert main(["plugin", "new", "Not A Name", "--dir", str(tmp_path)]) == 2
    assert "lower-case letters" in capsys.readouterr().err


def test_new_writes_into_the_user_plugin_folder_by_default(capsys):
    from workbench.home import user_plugins_dir

    assert main(["plugin", "new", "kit_default", "--kind", "detector"]) == 0
    assert (user_plugins_dir() / "kit_default.py").is_file()
    assert (user_plugins_dir() / "test_kit_default.py").is_file()
    assert 'name = "kit-default"' in (user_plugins_dir() / "kit_default.py").read_text()


def test_template_attack_in_a_plugin_folder_is_discovered_with_its_param_specs(tmp_path, capsys):
    from workbench import api
    from workbench.engine.plugins import PluginRegistry, discover_plugins

    new(tmp_path, "kit-found", "attack", capsys)
    found = discover_plugins(extra_dirs=[tmp_path], user_dir=False, entry_points=False)
    # the test file beside it is imported too, and is neither a plugin nor broken
    assert [p.name for p in found if str(tmp_path) in p.source] == ["kit-found"]
    info = PluginRegistry(found).get("kit-found", "attack")
    assert info.ok and info.threat == "white-box gradient" and info.scope == "per-image"
    specs = {s.name: s for s in api.param_specs(info.cls.Params)}
    assert list(specs) == ["eps", "steps", "random_start"]
    assert (specs["eps"].type, specs["eps"].default, specs["eps"].min, specs["eps"].max) == \
        (float, 0.01, 0.0, 1.0)
    assert (specs["steps"].type, specs["steps"].default) == (int, 5)
    assert specs["random_start"].type is bool and specs["eps"].help


# --- plugin check on a broken plugin -----------------------------------------------------------
BROKEN = '''
"""A plugin file with one of each mistake."""

from dataclasses import dataclass

from workbench.api import Attack, AttackResult, Detector, Finding, param
from workbench.engine.plugins import ENTRY_POINT_GROUP  # plugins may not import this


class HalvesImage(Attack):
    name = "kit-bad-shape"
    summary = "halves the image; its eps default lies outside its range"

    @dataclass
    class Params:
        eps: float = param(2.0, min=0.0, max=1.0)

    def run(self, model, images, labels, target, params, ctx):
        return AttackResult(adversarial=images[..., ::2, ::2])


class LeavesRange(Attack):
    name = "kit-out-of-range"
    summary = "adds 0.5 everywhere"

    @dataclass
    class Params:
        pass

    def run(self, model, images, labels, target, params, ctx):
        return AttackResult(adversarial=images + 0.5)


class SwallowsCancel(Attack):
    name = "kit-swallows-cancel"
    summary = "queries the model, catching every exception"

    @dataclass
    class Params:
        queries: int = param(5, min=1, max=50)

    def run(self, model, images, labels, target, params, ctx):
        for _ in range(params.queries):
            try:
                model(images)
            except Exception:  # the bug: this catches api.Cancelled too
                pass
        return AttackResult(adversarial=images.clone())


class Divides(Detector):
    name = "kit-divides"
    summary = "divides by zero"

    @dataclass
    class Params:
        mode: str = param("fast", choices=("median", "nlm"))

    def analyze(self, image, params, ctx):
        return Finding(score=1 / 0)
'''


def test_check_names_each_problem_of_a_broken_plugin(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN.lstrip())
    assert main(["plugin", "check", str(path)]) == 1
    out = capsys.readouterr().out
    fails = [line.strip() for line in out.splitlines() if line.strip().startswith("FAIL")]
    expected = [
        "FAIL  imports: line 6 imports workbench.engine.plugins (plugins may import only "
        "workbench.api)",
        "FAIL  kit-bad-shape parameters: Params.eps default 2.0 is above its max 1.0",
        "FAIL  kit-bad-shape run: CT_small.dcm (1 x 1 x 128 x 128): run() returned shape "
        "(1, 1, 64, 64) for input (1, 1, 128, 128)",
        "FAIL  kit-bad-shape run: 2 synthetic RGB photos (2 x 3 x 64 x 64): run() returned "
        "shape (2, 3, 32, 32) for input (2, 3, 64, 64)",
        "FAIL  kit-out-of-range run: CT_small.dcm (1 x 1 x 128 x 128): run() returned values "
        "outside [0, 1] (0.5..1.5)",
        "FAIL  kit-swallows-cancel cancel: ignores Cancel: 4 model calls refused with "
        "api.Cancelled and it still returned a result",
        "FAIL  kit-divides parameters: Params.mode default 'fast' is not one of its choices "
        "['median', 'nlm']",
        "FAIL  kit-divides analyze: CT_small.dcm (128 x 128): analyze() raised "
        "ZeroDivisionError: division by zero (broken.py line 59, in analyze) (also on "
        "synthetic photo 1 (64 x 64), synthetic photo 2 (64 x 64))",
    ]
    for line in expected:
        assert any(f.startswith(line) for f in fails), f"{line}\n--- got:\n{out}"
    assert len(fails) == 9  # the 8 above and kit-out-of-range on the photos
    # what works is said to work: the plugin that swallows Cancel runs fine otherwise
    assert "PASS  kit-swallows-cancel run: CT_small.dcm" in out
    assert out.rstrip().endswith("checks: 9 failed")


def test_check_of_a_missing_file_or_a_file_that_does_not_import(tmp_path, capsys):
    assert main(["plugin", "check", str(tmp_path / "nope.py")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {tmp_path / 'nope.py'}: no such file\n"
    assert captured.out == ""
    (tmp_path / "typo.py").write_text("import not_a_module_anywhere\n")
    assert main(["plugin", "check", str(tmp_path / "typo.py")]) == 1
    out = capsys.readouterr().out
    assert "FAIL  import: import failed: ModuleNotFoundError: No module named " \
           "'not_a_module_anywhere'" in out


def test_parameter_and_import_problems_are_named_precisely():
    from dataclasses import dataclass

    from workbench.api import param

    @dataclass
    class Params:
        steps: int = param(2.5, min=1, max=10)
        lo_hi: float = param(0.5, min=1.0, max=0.0)
        low: float = param(-1.0, min=0.0)
        size: tuple = param((1, 2))
        flag: bool = param(1)

    assert params_problems(Params) == [
        "Params.steps default 2.5 is a float, declared int",
        "Params.lo_hi min 1.0 is above its max 0.0",
        "Params.lo_hi default 0.5 is below its min 1.0",
        "Params.lo_hi default 0.5 is above its max 0.0",
        "Params.low default -1.0 is below its min 0.0",
        "Params.size is declared tuple: forms and --param offer only float, int, bool and str",
        "Params.flag default 1 is a int, declared bool",
    ]
    assert params_problems(object) == ["Params is not a dataclass (decorate it with "
                                       "@dataclass)"]
    source = ("import workbench.api\nfrom workbench import api, engine\nimport workbench\n"
              "def f():\n    from workbench.gui.main_window import MainWindow\n")
    assert forbidden_imports(source) == [(2, "workbench.engine"), (3, "workbench"),
                                         (5, "workbench.gui.main_window")]


# --- the API reference and the example package ------------------------------------------------
def test_api_reference_in_the_docs_is_generated_from_api_py():
    from workbench.plugin_kit.apidoc import render_api, section_of

    generated = render_api()
    docs = (REPO_ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert section_of(docs) == generated, (
        "docs/plugins.md is out of date: python -m workbench.plugin_kit.apidoc --write "
        "docs/plugins.md")
    for name in ("class Attack:", "class Detector:", "def param(", "def make_params(",
                 "class RunContext:", "def check_cancelled(self) -> None", "def image_tensor("):
        assert name in generated


def test_example_package_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """As pip would install it: the package on sys.path and a dist-info folder whose
    entry_points.txt comes from the example's pyproject.toml."""
    import tomllib

    from workbench.engine.plugins import ENTRY_POINT_GROUP, discover_plugins

    package = REPO_ROOT / "examples" / "plugin-package"
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    points = project["entry-points"][ENTRY_POINT_GROUP]
    dist = tmp_path / "site" / "workbench_gamma_attack-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    monkeypatch.syspath_prepend(str(package / "src"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = [p for p in discover_plugins(user_dir=False) if p.source.startswith("entry point")]
    assert [(p.name, p.status, p.threat) for p in found] == [("gamma-search", "ok", "semantic")]
    assert found[0].source == "entry point workbench_gamma_attack.gamma:GammaSearch"


# --- the GUI: a new plugin in the attack list, with its form, run on a CT slice ------------
def test_new_plugin_appears_in_the_attack_dock_with_its_form_and_runs(qtbot, capsys):
    from workbench.gui.main_window import MainWindow

    # Written into the user plugin folder before the window exists: it discovers at start.
    assert main(["plugin", "new", "kit-gui"]) == 0
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    ap = w.attacks
    qtbot.waitUntil(lambda: ap.plugin_box.count() > 0)  # listed right after the first paint
    index = ap.plugin_box.findData("kit-gui")
    assert index >= 0 and ap.plugin_box.itemText(index) == "kit-gui — white-box gradient"
    assert "kit" not in ap.broken.text()  # test_kit_gui.py beside it is not a broken plugin
    ap.plugin_box.setCurrentIndex(index)
    assert list(ap.form.editors) == ["eps", "steps", "random_start"]
    assert ap.form.editors["eps"].value() == pytest.approx(0.01)
    assert ap.form.editors["eps"].maximum() == pytest.approx(1.0)
    assert ap.form.editors["steps"].value() == 5
    assert ap.form.editors["random_start"].isChecked()
    assert ap.form.values() == {"eps": pytest.approx(0.01), "steps": 5, "random_start": True}

    ct = pydicom_test_file("CT_small.dcm")
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    w.open_paths([ct])
    qtbot.waitUntil(lambda: w.view.image is not None and str(w.view.image.path) == str(ct),
                    timeout=TIMEOUT)
    ap.form.set_value("eps", 0.02)
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.study.get(str(ct)).attack is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=TIMEOUT)
    outcome = w.study.get(str(ct)).attack.outcome
    assert outcome.plugin == "kit-gui" and outcome.params["eps"] == pytest.approx(0.02)
    assert tuple(outcome.adversarial.shape) == (1, 1, 128, 128)
    assert float(outcome.linf.max()) <= 0.02 + 1e-6 and outcome.model_calls >= 1
    w.close()
