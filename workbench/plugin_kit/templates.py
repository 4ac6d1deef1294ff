"""The files ``workbench plugin new`` writes: a plugin and its pytest file, per kind.

The templates are strings here, not data files, so they ship inside the package with no
package-data set-up (and in the frozen app). ``{{name}}`` (the plugin's name, e.g.
``my-attack``), ``{{stem}}`` (its file name without ``.py``, e.g. ``my_attack``) and
``{{cls}}`` (its class, e.g. ``MyAttack``) are filled in by :func:`render`.

Each plugin template is a working plugin that passes ``workbench plugin check`` as it is:
a researcher starts from something that runs and changes it step by step. The test
templates import only the standard library at the top, because they sit in a plugin
folder and discovery imports every ``*.py`` file there (finding no plugin in them).
"""

from __future__ import annotations

ATTACK = '''"""{{name}}: <one line: what this attack does>.

What it does
    <Two or three sentences: how the perturbation is made, what it optimises, when it
    stops.> As generated, it is the basic iterative method (Kurakin, Goodfellow and
    Bengio, "Adversarial examples in the physical world", ICLR workshop 2017) from a
    random start: a few signed-gradient steps inside an L-infinity ball of radius
    ``eps``, each image stopping once the model is fooled.

Paper it follows
    <Authors, "Title", venue and year, DOI or arXiv link. Say where this file departs
    from the paper: defaults, loss, stopping rule, preprocessing.>

Threat model
    White-box gradient: the attacker has the model and its gradients. Budget: L-infinity
    ``eps`` in [0, 1] image space (the model resizes and normalises by itself, so the
    budget means the same for every model). Untargeted, or targeted when the user ticks
    "Targeted" (``target`` is then the class to reach).

Made with ``workbench plugin new {{name}} --kind attack``. After each edit:
``workbench plugin check {{stem}}.py`` and ``python -m pytest -q test_{{stem}}.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# A plugin imports only workbench.api from the workbench: it is the stable contract.
from workbench.api import (
    Attack,
    AttackResult,
    RunContext,
    loss_gradient,
    param,
    project_linf,
    reached,
)


class {{cls}}(Attack):
    name = "{{name}}"  # unique among all plugins: the GUI's list and --plugin use it
    summary = "<One line for the attack list: what it does, which norm.>"
    threat = "white-box gradient"  # one of workbench.api.THREATS
    scope = "per-image"  # or "universal": one perturbation learned for a set of images
    version = "1"  # recorded with every result: bump it when results change

    @dataclass
    class Params:
        # Each field is a row of the GUI's form and a --param of the command line; the
        # engine checks type, min/max and choices before run() is called.
        eps: float = param(0.01, min=0.0, max=1.0, step=0.001, label="eps (L-inf)",
                           help="L-infinity budget in [0, 1] image space")
        steps: int = param(5, min=1, max=1000, step=1,
                           help="signed-gradient steps (one forward and backward each)")
        random_start: bool = param(True, help="start at a random point inside the budget "
                                              "(drawn from the run's seeded generator)")

    def run(self, model: Any, images: torch.Tensor, labels: torch.Tensor,
            target: torch.Tensor | None, params: Any, ctx: RunContext) -> AttackResult:
        # images: N x C x H x W floats in [0, 1] on ctx.device (C = 1 for greyscale
        # DICOM, 3 for photos); labels: the N true classes (or the model's clean
        # answers); target: the N classes to reach when targeted, else None.
        # Return the adversarial batch: same shape, values in [0, 1]. The engine
        # measures success, probabilities and norms itself.
        x = images
        adv = x.clone()
        if params.random_start:
            # Random numbers come from ctx.generator only, so a seed reproduces a run.
            noise = torch.rand(x.shape, generator=ctx.generator, device=x.device)
            adv = project_linf(x + (2 * noise - 1) * params.eps, x, params.eps)
        step = 2.5 * params.eps / params.steps  # Madry et al.'s step: reaches the edge
        iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for i in range(params.steps):
            ctx.check_cancelled()  # raises api.Cancelled on Cancel: never catch it
            grad, logits = loss_gradient(model, adv, labels, target)
            active = ~reached(logits, labels, target)  # the images not fooled yet
            if not bool(active.any()):
                break
            iterations += active.long()
            move = step * grad.sign() * active.to(x.dtype).view(-1, 1, 1, 1)
            adv = project_linf(adv + move, x, params.eps)
            ctx.progress((i + 1) / params.steps, f"step {i + 1} of {params.steps}")
        return AttackResult(adversarial=adv.detach(), iterations=iterations.cpu())
'''

DETECTOR = '''"""{{name}}: <one line: what this detector looks for>.

What it does
    <Two or three sentences: what is measured and why an attacked image scores
    higher.> As generated: how far the model's answer moves when a little random noise
    is added. An adversarial image sits close to a decision boundary, so noise moves
    its class probabilities more than a clean image's (the idea behind feature
    squeezing: Xu, Evans and Qi, NDSS 2018).

Paper it follows
    <Authors, "Title", venue and year, DOI or arXiv link. Say where this file departs
    from the paper.>

Threat model
    <What it assumes about the attacker, e.g.: a small perturbation made without
    knowing this detector (not adaptive).> Needs the classifier under review
    (``needs = ("model",)``). The score is calibrated on clean images: the engine turns
    it into a verdict at a chosen false-positive rate (``workbench calibrate``).

Made with ``workbench plugin new {{name}} --kind detector``. After each edit:
``workbench plugin check {{stem}}.py`` and ``python -m pytest -q test_{{stem}}.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# A plugin imports only workbench.api from the workbench: it is the stable contract.
from workbench.api import DetectionContext, Detector, Finding, image_tensor, param


class {{cls}}(Detector):
    name = "{{name}}"  # unique among all plugins: the GUI's list and --detector use it
    summary = "<One line for the detector list: what it measures.>"
    needs = ("model",)  # from workbench.api.NEEDS: model, capture_record, reference, ...
    calibratable = True  # the engine thresholds the score on clean images
    version = "1"  # recorded with every finding: bump it when scores change

    @dataclass
    class Params:
        # Each field is a row of the GUI's form; the engine checks type and range.
        sigma: float = param(0.02, min=0.0, max=0.5, step=0.005,
                             help="standard deviation of the noise, [0, 1] image space")
        copies: int = param(4, min=1, max=64, step=1, help="noisy copies to compare")

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        # image: the decoded MedicalImage (image.rows, image.columns, image.path, ...);
        # image_tensor() gives its first frame as 1 x C x H x W floats in [0, 1].
        x = image_tensor(image).to(ctx.device)
        shifts = []
        with torch.no_grad():
            clean = torch.softmax(ctx.model(x), dim=1)
            for i in range(params.copies):
                ctx.check_cancelled()  # raises api.Cancelled on Cancel: never catch it
                # Random numbers come from ctx.generator only: a seed reproduces a score.
                noise = torch.randn(x.shape, generator=ctx.generator, device=x.device)
                noisy = torch.softmax(ctx.model((x + params.sigma * noise).clamp(0, 1)), dim=1)
                shifts.append(float((noisy - clean).abs().max()))
                ctx.progress((i + 1) / params.copies, f"noisy copy {i + 1} of {params.copies}")
        score = sum(shifts) / len(shifts)  # higher = more suspicious
        return Finding(
            score=score,
            # "clean" means it ran: with calibratable = True the engine's threshold decides.
            verdict="clean",
            explanation=f"noise of sigma {params.sigma} moves the model's probabilities by "
                        f"{score:.3f} on average ({params.copies} copies)",
            # An evidence map, when there is one, is H x W = image.rows x image.columns.
            evidence=None,
            details={"shifts": shifts},
        )
'''

# The part both generated test files share: {{kind}}, {{runner}} and {{extra_imports}} are
# filled in per kind (then {{name}} and {{stem}} per plugin, by the scaffold).
_TEST_HEAD = '''"""Tests of the {{name}} {{kind}} plugin (made by ``workbench plugin new``).

Run: ``python -m pytest -q test_{{stem}}.py`` (the workbench must be importable). Tests may
use the engine (``{{runner}}``, the way the app runs a plugin); the plugin itself imports
only ``workbench.api``. Only the standard library is imported at the top: this file sits in
a plugin folder, and discovery imports every ``*.py`` file there (it finds no plugin in
this one).
"""

from __future__ import annotations

import functools
{{extra_imports}}from pathlib import Path

PLUGIN_FILE = Path(__file__).with_name("{{stem}}.py")


def load_plugin():
    """The plugin, imported on its own by path the way the workbench discovers it."""
    from workbench.engine.plugins import load_plugin_file

    infos = load_plugin_file(PLUGIN_FILE)
    broken = [f"{i.name}: {i.error}" for i in infos if not i.ok]
    assert not broken, broken
    (info,) = [i for i in infos if i.name == "{{name}}"]
    return info.create()


@functools.lru_cache(maxsize=1)
def demo_model():
    from workbench.models.zoo import load_model

    return load_model("demo")


'''


def _test_head(kind: str, runner: str, extra_imports: str = "") -> str:
    return (_TEST_HEAD.replace("{{kind}}", kind).replace("{{runner}}", runner)
            .replace("{{extra_imports}}", extra_imports))


ATTACK_TEST = _test_head("attack", "workbench.engine.attack_runner.run_attack") + '''\
def synthetic_batch(n: int = 2, channels: int = 3, size: int = 64):
    """n smooth test images in [0, 1], seeded: every run sees the same ones."""
    import torch
    import torch.nn.functional as F

    coarse = torch.rand(n, channels, 8, 8, generator=torch.Generator().manual_seed(0))
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_declaration_is_valid():
    from workbench.api import SCOPES, THREATS, make_params

    plugin = load_plugin()
    assert plugin.threat in THREATS and plugin.scope in SCOPES
    make_params(plugin.Params, {})  # the defaults lie inside their ranges


def test_result_keeps_shape_range_and_budget():
    from workbench.engine.attack_runner import run_attack

    plugin = load_plugin()
    for channels in (1, 3):  # greyscale DICOM and colour photos
        x = synthetic_batch(channels=channels)
        out = run_attack(plugin, demo_model(), x, seed=0)
        assert out.adversarial.shape == x.shape
        assert 0.0 <= float(out.adversarial.min()) and float(out.adversarial.max()) <= 1.0
        # An L-infinity eps budget is checked when the plugin has one; write your own
        # check for an L0, L2 or semantic budget.
        eps = getattr(plugin.Params(), "eps", None)
        if eps is not None:
            assert float(out.linf.max()) <= eps + 1e-6
        assert out.model_calls >= 1


def test_a_seed_reproduces_the_run():
    from workbench.engine.attack_runner import run_attack

    plugin = load_plugin()
    x = synthetic_batch()
    first = run_attack(plugin, demo_model(), x, seed=7)
    again = run_attack(plugin, demo_model(), x, seed=7)
    assert (first.adversarial == again.adversarial).all()


def test_cancel_stops_the_run():
    import pytest

    from workbench.engine.attack_runner import AttackCancelled, run_attack

    with pytest.raises(AttackCancelled):
        run_attack(load_plugin(), demo_model(), synthetic_batch(), cancelled=lambda: True)
'''

DETECTOR_TEST = _test_head("detector", "workbench.engine.detector_runner.run_detector",
                           "import math\n") + '''\
def synthetic_image(channels: int = 3, size: int = 64):
    """A smooth seeded test image, as the MedicalImage a saved 8-bit photo would give."""
    import numpy as np

    from workbench.imaging.in_memory import image_from_unit_array

    rng = np.random.default_rng(0)
    coarse = rng.random((channels, 8, 8))
    x = np.kron(coarse, np.ones((size // 8, size // 8)))
    return image_from_unit_array(x, "synthetic.png")


def test_declaration_is_valid():
    from workbench.api import NEEDS, make_params

    plugin = load_plugin()
    assert set(plugin.needs) <= set(NEEDS)
    make_params(plugin.Params, {})  # the defaults lie inside their ranges


def test_finding_is_valid():
    from workbench.engine.detector_runner import VERDICTS, run_detector

    plugin = load_plugin()
    for channels in (1, 3):  # greyscale and colour
        image = synthetic_image(channels)
        out = run_detector(plugin, image, model=demo_model(), seed=0)
        assert out.score is not None and math.isfinite(out.score)
        assert out.verdict in VERDICTS
        assert out.explanation
        assert out.evidence is None or out.evidence.shape == (image.rows, image.columns)


def test_a_seed_reproduces_the_score():
    from workbench.engine.detector_runner import run_detector

    plugin = load_plugin()
    image = synthetic_image()
    first = run_detector(plugin, image, model=demo_model(), seed=7)
    again = run_detector(plugin, image, model=demo_model(), seed=7)
    assert first.score == again.score


def test_cancel_stops_the_run():
    # Delete this test if the detector never calls the model and is fast.
    import pytest

    from workbench.engine.detector_runner import DetectorCancelled, run_detector

    with pytest.raises(DetectorCancelled):
        run_detector(load_plugin(), synthetic_image(), model=demo_model(),
                     cancelled=lambda: True)
'''

TEMPLATES = {"attack": (ATTACK, ATTACK_TEST), "detector": (DETECTOR, DETECTOR_TEST)}


def render(template: str, *, name: str, stem: str, cls: str) -> str:
    """``template`` with its ``{{...}}`` fields filled in."""
    return (template.replace("{{name}}", name).replace("{{stem}}", stem)
            .replace("{{cls}}", cls))
