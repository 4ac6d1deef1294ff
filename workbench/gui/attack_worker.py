"""Model loading, prediction and attacks on the window's thread pool (never the GUI thread)."""

from __future__ import annotations

import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal


class ModelSignals(QObject):
    loaded = Signal(str, object)  # name, model
    failed = Signal(str, str)


class LoadModelTask(QRunnable):
    def __init__(self, name: str, device: str) -> None:
        super().__init__()
        self.name, self.device = name, device
        self.signals = ModelSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            from ..models.device import choose_device
            from ..models.zoo import load_model

            model = load_model(self.name, choose_device(self.device))
            self.signals.loaded.emit(self.name, model)
        except Exception as exc:
            self.signals.failed.emit(self.name, f"{self.name}: {exc}")


class PredictSignals(QObject):
    predicted = Signal(str, object)  # path, probabilities (list of floats)
    failed = Signal(str, str)


class PredictTask(QRunnable):
    def __init__(self, path: str, image: Any, frame: int, model: Any) -> None:
        super().__init__()
        self.path, self.image, self.frame, self.model = path, image, frame, model
        self.signals = PredictSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            import torch

            from ..imaging.model_input import to_model_input
            from ..models.classifier import predict_proba

            x, _ = to_model_input(self.image, self.frame)
            probs = predict_proba(self.model, torch.from_numpy(x)[None])[0]
            self.signals.predicted.emit(self.path, [float(p) for p in probs])
        except Exception as exc:
            self.signals.failed.emit(self.path, f"{self.path}: cannot classify ({exc})")


UNIVERSAL_SIZE = 224  # working size of the batch a universal attack trains on


class AttackSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(str, object)  # path, dict with outcome, original x, mapping, image
    failed = Signal(str, str)
    cancelled = Signal(str)
    done = Signal()


class AttackTask(QRunnable):
    """Attack each (path, image, frame) in turn; progress spans the whole job."""

    def __init__(self, jobs: list[tuple[str, Any, int]], plugin: Any, model: Any,
                 params: dict[str, Any], targeted: bool, surrogate: Any = None,
                 plugin_lookup: Any = None, seed: int = 0) -> None:
        super().__init__()
        self.jobs, self.plugin, self.model, self.params = jobs, plugin, model, params
        self.targeted, self.surrogate, self.plugin_lookup, self.seed = (
            targeted, surrogate, plugin_lookup, seed)
        self.signals = AttackSignals()
        self._cancel = threading.Event()
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        if getattr(self.plugin, "scope", "per-image") == "universal":
            self._run_universal()
        else:
            self._run_per_image()
        self.signals.done.emit()

    def _run_universal(self) -> None:
        """One run over all images (e.g. training a patch): they are resized to one
        working size so they form one batch."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        from ..engine.attack_runner import AttackCancelled, AttackFailed, run_attack
        from ..imaging.model_input import to_model_input

        first = self.jobs[0][0]
        try:
            xs = []
            for _path, image, frame in self.jobs:
                x, _ = to_model_input(image, frame)
                t = torch.from_numpy(x)[None]
                t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
                xs.append(F.interpolate(t, size=(UNIVERSAL_SIZE, UNIVERSAL_SIZE), mode="area"))
            batch = torch.cat(xs)
            outcome = run_attack(
                self.plugin, self.model, batch, targeted=self.targeted, params=self.params,
                surrogate=self.surrogate, seed=self.seed,
                progress=lambda f, m: self.signals.progress.emit(f, m),
                cancelled=self._cancel.is_set, plugin_lookup=self.plugin_lookup)
        except AttackCancelled:
            self.signals.cancelled.emit(first)
            return
        except AttackFailed as exc:
            self.signals.failed.emit(first, str(exc))
            return
        except Exception as exc:
            self.signals.failed.emit(first, f"{type(exc).__name__}: {exc}")
            return
        self.signals.finished.emit(first, {"outcome": outcome, "x": batch[0].numpy(),
                                           "mapping": None, "image": self.jobs[0][1],
                                           "frame": 0, "universal": True,
                                           "n_images": len(self.jobs)})

    def _run_per_image(self) -> None:
        import torch

        from ..engine.attack_runner import AttackCancelled, AttackFailed, run_attack
        from ..imaging.model_input import to_model_input

        n = len(self.jobs)
        for i, (path, image, frame) in enumerate(self.jobs):
            if self._cancel.is_set():
                self.signals.cancelled.emit(path)
                break
            try:
                x, mapping = to_model_input(image, frame)
                outcome = run_attack(
                    self.plugin, self.model, torch.from_numpy(x)[None], targeted=self.targeted,
                    params=self.params, surrogate=self.surrogate, seed=self.seed,
                    progress=lambda f, m, i=i: self.signals.progress.emit((i + f) / n, m),
                    cancelled=self._cancel.is_set, plugin_lookup=self.plugin_lookup)
            except AttackCancelled:
                self.signals.cancelled.emit(path)
                break
            except AttackFailed as exc:
                self.signals.failed.emit(path, str(exc))
                continue
            except Exception as exc:  # the worker reports; the window keeps working
                self.signals.failed.emit(path, f"{type(exc).__name__}: {exc}\n"
                                         + traceback.format_exc(limit=-2))
                continue
            self.signals.finished.emit(path, {"outcome": outcome, "x": x, "mapping": mapping,
                                              "image": image, "frame": frame})
