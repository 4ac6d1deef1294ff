"""Plugin discovery, declarations, parameters and isolation of misbehaving plugins."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from workbench import api
from workbench.engine.attack_runner import AttackCancelled, AttackFailed, run_attack
from workbench.engine.plugins import PluginRegistry, discover_plugins, load_plugin_file
from workbench.models.card import ModelCard
from workbench.models.classifier import Classifier, build_network

HEADER = """
from dataclasses import dataclass
from workbench.api import Attack, AttackResult, param
"""

BAD_PLUGINS = {
    "import_fails.py": "import no_such_module_anywhere\n",
    "syntax_error.py": "def broken(:\n",
    "undeclared.py": HEADER + textwrap.dedent("""
        class Undeclared(Attack):
            name = "undeclared"
            threat = "telepathy"
            @dataclass
            class Params:
                eps: float = param(0.5, min=1.0, max=0.0)
            def run(self, model, images, labels, target, params, ctx):
                return AttackResult(images)
        """),
    "raises.py": HEADER + textwrap.dedent("""
        class Raises(Attack):
            name = "raises"
            summary = "always raises"
            @dataclass
            class Params:
                pass
            def run(self, model, images, labels, target, params, ctx):
                raise RuntimeError("boom from the plugin")
        """),
    "nan.py": HEADER + textwrap.dedent("""
        class ReturnsNaN(Attack):
            name = "returns-nan"
            summary = "returns NaN"
            @dataclass
            class Params:
                pass
            def run(self, model, images, labels, target, params, ctx):
                return AttackResult(images * float("nan"))
        """),
    "shape.py": HEADER + textwrap.dedent("""
        class WrongShape(Attack):
            name = "wrong-shape"
            summary = "returns half the image"
            @dataclass
            class Params:
                pass
            def run(self, model, images, labels, target, params, ctx):
                return AttackResult(images[..., ::2])
        """),
    "loops.py": HEADER + textwrap.dedent("""
        class LoopsForever(Attack):
            name = "loops-forever"
            summary = "queries the model until cancelled, never checks"
            @dataclass
            class Params:
                pass
            def run(self, model, images, labels, target, params, ctx):
                while True:
                    model(images)
        """),
}


@pytest.fixture
def bad_plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    for name, text in BAD_PLUGINS.items():
        (d / name).write_text(text)
    return d


@pytest.fixture(scope="module")
def small_model():
    """A real (small) torchvision network with random weights in our wrapper."""
    torch.manual_seed(0)
    card = ModelCard(name="test", architecture="mobilenet_v3_small", weights="-",
                     input_size=(64, 64))
    model = Classifier(build_network("mobilenet_v3_small", 2), card).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def test_builtin_plugins_load():
    names = {p.name: p for p in discover_plugins(user_dir=False)}
    for n in ("fgsm", "pgd", "transfer-pgd"):
        assert names[n].ok, names[n].error


def test_broken_plugins_are_reported_and_the_rest_load(bad_plugin_dir):
    found = {p.name: p for p in discover_plugins([bad_plugin_dir], user_dir=False)}
    assert found["pgd"].ok  # the built-ins still load
    assert not found["import_fails"].ok and "No module named" in found["import_fails"].error
    assert not found["syntax_error"].ok and "SyntaxError" in found["syntax_error"].error
    und = found["undeclared"]
    assert not und.ok
    for problem in ("no summary", "threat 'telepathy'", "Params.eps min 1.0 is above its max 0.0"):
        assert problem in und.error
    for runtime_bad in ("raises", "returns-nan", "wrong-shape", "loops-forever"):
        assert found[runtime_bad].ok  # declared correctly; they fail only when run


def _plugin(bad_plugin_dir, file):
    (info,) = load_plugin_file(bad_plugin_dir / file)
    return info.create()


def test_runtime_failures_are_reported_not_raised(bad_plugin_dir, small_model):
    x = torch.rand(2, 3, 64, 64)
    with pytest.raises(AttackFailed, match="boom from the plugin"):
        run_attack(_plugin(bad_plugin_dir, "raises.py"), small_model, x)
    with pytest.raises(AttackFailed, match="NaN"):
        run_attack(_plugin(bad_plugin_dir, "nan.py"), small_model, x)
    with pytest.raises(AttackFailed, match="shape"):
        run_attack(_plugin(bad_plugin_dir, "shape.py"), small_model, x)
    # the model is untouched: eval mode, frozen, and it still predicts
    assert not small_model.training
    assert small_model(x).shape == (2, 2)


def test_a_plugin_that_never_checks_is_cancelled_at_its_next_model_call(bad_plugin_dir,
                                                                       small_model):
    calls = {"n": 0}

    def cancelled():
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(AttackCancelled):
        run_attack(_plugin(bad_plugin_dir, "loops.py"), small_model, torch.rand(1, 3, 64, 64),
                   cancelled=cancelled)
    assert calls["n"] == 6  # stopped at the first model call after the cancel


def test_pgd_checks_cancel_every_iteration(small_model):
    pgd = PluginRegistry(discover_plugins(user_dir=False)).create("pgd")
    seen = []

    def cancelled():
        return len(seen) >= 3

    with pytest.raises(AttackCancelled):
        run_attack(pgd, small_model, torch.rand(2, 3, 64, 64),
                   params={"steps": 1000, "early_stop": False},
                   progress=lambda f, m: seen.append(m), cancelled=cancelled)
    assert len(seen) == 3  # no iteration ran past the cancel


def test_params_are_validated():
    from plugins.pgd import PGD  # the repository's plugins folder is importable in tests

    p = api.make_params(PGD.Params, {"eps": "0.03", "steps": "7", "norm": "l2",
                                     "random_start": "false"})
    assert (p.eps, p.steps, p.norm, p.random_start) == (0.03, 7, "l2", False)
    with pytest.raises(api.ParamError, match="above the maximum"):
        api.make_params(PGD.Params, {"eps": 2})
    with pytest.raises(api.ParamError, match="not one of"):
        api.make_params(PGD.Params, {"norm": "l1"})
    with pytest.raises(api.ParamError, match="unknown parameter"):
        api.make_params(PGD.Params, {"epsilon": 0.1})
    with pytest.raises(api.ParamError, match="expected int"):
        api.make_params(PGD.Params, {"steps": "many"})


@pytest.mark.parametrize("name,params", [
    ("fgsm", {"eps": 0.03}),
    ("pgd", {"eps": 0.03, "steps": 5}),
    ("pgd", {"eps": 0.03, "steps": 5, "random_start": False, "early_stop": False}),
    ("pgd", {"eps": 0.5, "steps": 5, "norm": "l2"}),
])
def test_attacks_stay_in_the_ball_and_in_range(small_model, name, params):
    torch.manual_seed(1)
    x = torch.rand(4, 3, 48, 40)
    x[0] = 0.0  # corners of the range are where clipping matters
    x[1] = 1.0
    plugin = PluginRegistry(discover_plugins(user_dir=False)).create(name)
    out = run_attack(plugin, small_model, x, params=params)
    adv = out.adversarial
    assert adv.shape == x.shape and adv.min() >= 0.0 and adv.max() <= 1.0
    delta = (adv - x).flatten(1)
    eps = params["eps"]
    if params.get("norm") == "l2":
        assert float(delta.norm(dim=1).max()) <= eps * (1 + 1e-5)
    else:
        assert float(delta.abs().max()) <= eps + 1e-7
    assert torch.equal(out.linf, delta.abs().amax(dim=1))


def test_user_plugin_folder_is_discovered(_private_home):
    from workbench.home import user_plugins_dir

    (user_plugins_dir() / "mine.py").write_text(BAD_PLUGINS["raises.py"].replace(
        '"raises"', '"my-attack"'))
    found = {p.name: p for p in discover_plugins()}
    assert found["my-attack"].ok and Path(found["my-attack"].source).parent == user_plugins_dir()


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    """A pip-installed plugin package announces itself in the workbench.plugins group."""
    import importlib

    (tmp_path / "wb_extra_attack.py").write_text(BAD_PLUGINS["raises.py"].replace(
        '"raises"', '"packaged-attack"'))
    dist = tmp_path / "wb_extra_attack-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-extra-attack\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text("[workbench.plugins]\n"
                                           "packaged = wb_extra_attack\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    found = {p.name: p for p in discover_plugins(user_dir=False)}
    assert found["packaged-attack"].ok
    assert found["packaged-attack"].source == "entry point wb_extra_attack"


# --- one validator: discovery, plugin check, --param and the form agree -------------------
@pytest.mark.parametrize("field,message", [
    ("opts: dict = param(None)",
     "Params.opts is declared dict: forms and --param offer only float, int, bool and str"),
    ("eps: float = param(2.0, min=0.0, max=1.0)", "Params.eps default 2.0 is above its max 1.0"),
])
def test_a_bad_params_is_rejected_alike_by_discovery_plugin_check_cli_and_form(
        tmp_path, qtbot, field, message):
    from workbench.gui.param_form import ParamForm
    from workbench.plugin_kit import check_plugin

    path = tmp_path / "bad_params.py"
    path.write_text(HEADER + textwrap.dedent(f"""
        class BadParams(Attack):
            name = "bad-params"
            summary = "declares a parameter the workbench cannot offer"
            @dataclass
            class Params:
                {field}
            def run(self, model, images, labels, target, params, ctx):
                return AttackResult(images)
        """))
    (info,) = load_plugin_file(path)  # discovery
    assert info.status == "broken" and info.error == message
    report = check_plugin(path, timeout=60)  # workbench plugin check
    assert [c.message for c in report.checks if c.name == "parameters"] == [message]
    assert [c.status for c in report.checks if c.name == "parameters"] == ["FAIL"]
    params_cls = info.cls or next(c for c in vars(sys.modules[_module_of(path)]).values()
                                  if isinstance(c, type) and c.__name__ == "BadParams").Params
    with pytest.raises(api.ParamError) as cli_error:  # what --param values go through
        api.make_params(params_cls, {})
    assert str(cli_error.value) == message
    with pytest.raises(api.ParamError) as form_error:  # the GUI builds no form for it
        ParamForm(params_cls)
    assert str(form_error.value) == message


def _module_of(path: Path) -> str:
    """The name discovery registered ``path``'s module under."""
    return next(name for name, mod in sys.modules.items()
                if name.startswith("workbench_plugin_")
                and Path(getattr(mod, "__file__", "") or "-").resolve() == path.resolve())


def test_an_accepted_params_builds_a_form_with_the_widget_of_each_type_bound_both_ways(qtbot):
    from dataclasses import dataclass

    from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

    from workbench.api import param
    from workbench.gui.param_form import ParamForm

    @dataclass
    class Params:
        steps: int = param(5, min=1, max=50, help="iterations")
        eps: float = param(0.25, min=0.0, max=1.0, step=0.05, help="budget")
        flag: bool = param(True)
        note: str = param("hi", label="a note")
        norm: str = param("l2", choices=("linf", "l2"))

    assert api.params_problems(Params) == []
    form = ParamForm(Params)
    qtbot.addWidget(form)
    assert {n: type(w) for n, w in form.editors.items()} == {
        "steps": QSpinBox, "eps": QDoubleSpinBox, "flag": QCheckBox, "note": QLineEdit,
        "norm": QComboBox}
    assert form.values() == {"steps": 5, "eps": 0.25, "flag": True, "note": "hi", "norm": "l2"}
    assert (form.editors["steps"].minimum(), form.editors["steps"].maximum()) == (1, 50)
    assert form.editors["eps"].singleStep() == pytest.approx(0.05)
    assert form.editors["eps"].toolTip() == "budget"
    # widgets -> values
    form.editors["steps"].setValue(7)
    form.editors["norm"].setCurrentIndex(0)
    form.editors["flag"].setChecked(False)
    assert form.values() == {"steps": 7, "eps": 0.25, "flag": False, "note": "hi",
                             "norm": "linf"}
    # values -> widgets
    for name, value in {"steps": 9, "eps": 0.5, "flag": True, "note": "x", "norm": "l2"}.items():
        form.set_value(name, value)
    assert form.editors["steps"].value() == 9 and form.editors["eps"].value() == 0.5
    assert form.editors["flag"].isChecked() and form.editors["note"].text() == "x"
    assert form.editors["norm"].currentData() == "l2"
    with pytest.raises(ValueError, match="not one of"):
        form.set_value("norm", "l1")
    with pytest.raises(ValueError, match="outside"):
        form.set_value("steps", 51)  # Qt would have clamped it to 50 without a word
    assert api.make_params(Params, form.values()).steps == 9  # what it shows is valid


def test_a_zero_that_means_auto_is_shown_as_what_it_means(qtbot):
    """PGD's step size 0 means 2.5 * eps / steps; the form says so instead of 0.00000."""
    from workbench.engine.plugins import PluginRegistry
    from workbench.gui.param_form import ParamForm

    form = ParamForm(PluginRegistry().create("pgd").Params)
    qtbot.addWidget(form)
    spin = form.editors["step_size"]
    assert spin.value() == 0.0 and spin.text() == "auto (2.5 * eps / steps)"
    form.set_value("step_size", 0.004)
    assert spin.text() == "0.00400" and form.values()["step_size"] == 0.004
    assert form.editors["eps"].text() == "0.0100"  # a plain value keeps its digits


@pytest.mark.parametrize(("body", "said"), [
    ("while True:\n    pass\n", "did not finish in 3 s"),
    ("import os\nos._exit(3)\n", "exited with code 3"),
])
def test_a_plugin_that_hangs_or_exits_at_import_is_reported_and_skipped(
        monkeypatch, body, said):
    """Such a file hung 'workbench plugins' and 'detect', or killed them without a word:
    it is imported in a child process first."""
    import time

    from workbench.engine import plugin_probe
    from workbench.engine.plugins import discover_plugins
    from workbench.home import user_plugins_dir

    monkeypatch.setattr(plugin_probe, "PROBE_TIMEOUT_S", 3.0)
    folder = user_plugins_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evil_import.py").write_text("from workbench.api import Attack\n" + body)
    start = time.monotonic()
    found = {p.name: p for p in discover_plugins()}
    assert time.monotonic() - start < 60
    evil = found["evil_import"]
    assert evil.status == "broken" and said in evil.error
    assert found["pgd"].ok  # the built-in ones are all there
    start = time.monotonic()
    assert said in {p.name: p for p in discover_plugins()}["evil_import"].error
    assert time.monotonic() - start < 3.0  # the verdict is cached for this file version
