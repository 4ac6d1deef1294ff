"""Shared timing helper for the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls (the median resists a noisy neighbour)."""
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def demo_session(path: object, device: str) -> tuple[object, object, object, object]:
    """The demo model on ``device`` and an image session of ``path``, as the GUI holds
    them: (device, model, image, session)."""
    from workbench.imaging import load_image
    from workbench.models.device import choose_device
    from workbench.models.zoo import load_model
    from workbench.session.image_session import ImageSession

    chosen = choose_device(device)
    model = load_model("demo", chosen)
    image = load_image(path)
    session = ImageSession(path)
    session.set_image(image)
    return chosen, model, image, session


# White-box PGD as Finlayson et al. set it: eps 0.01 in [0, 1] (0.02 on the seed's
# [-1, 1] scale), 20 steps, every step taken
PGD_PAPER = {"eps": 0.01, "steps": 20, "early_stop": False}


def demo_test_split(limit: int = 0) -> tuple[list[str], object, object]:
    """The demo card's test-split ISIC ids (never used to calibrate; the first ``limit``
    when given), the demo model and a plugin registry."""
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.card import ModelCard
    from workbench.models.zoo import load_model, resolve_card

    card = ModelCard.load(resolve_card("demo"))
    return card.split["test_ids"][: limit or None], load_model("demo"), PluginRegistry()


def save_attacked_copy(session: object, attack: object, model: object, params: dict,
                       out: object) -> object:
    """Attack ``session``'s image with ``attack`` at ``params`` (untargeted) and save the
    copy as the GUI saves it (full-size PNG at ``out``); the saved path."""
    from workbench import __version__
    from workbench.imaging.export import describe_attack, save_derived
    from workbench.session import actions

    actions.attack([(session, 0)], attack, model, "demo", params, targeted=False).run()
    run = session.attack
    return save_derived(run.image, run.outcome.adversarial[0].numpy(), run.mapping, out,
                        describe_attack(attack.name, attack.version, params, __version__))


def save_pgd_copy(session: object, pgd: object, model: object, out: object) -> object:
    """The PGD_PAPER copy of ``session``'s image, saved as the GUI saves it at ``out``."""
    return save_attacked_copy(session, pgd, model, PGD_PAPER, out)
