"""What a reviewer can do to an open image, each as a `Job`: decode, classify, attack,
run the detectors, verify, sign. The work runs off the session's thread; the results
land in the `ImageSession` they were computed on (through the job's callbacks), so a
result can only ever be shown with its own image."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from .image_session import AttackRun, ImageSession, Prediction
from .jobs import Cancelled, Job, JobFailed
from .study import Study

UNIVERSAL_SIZE = 224  # working size of the batch a universal attack trains on


def open_image(study: Study, session: ImageSession) -> Job:
    """Decode the image of ``session`` (read-only), with progress and cancel."""

    def work(job: Job) -> Any:
        from ..imaging.errors import ImageLoadError
        from ..imaging.loader import load_image

        job.progress(-1.0, f"opening {session.name}")
        try:
            image = load_image(session.path, progress=job.progress,
                               cancelled=lambda: job.cancelled)
        except ImageLoadError as exc:
            if job.cancelled:
                raise Cancelled(f"{session.path}: cancelled by the user") from None
            raise JobFailed(str(exc)) from None
        job.check_cancelled()
        from ..imaging.auto_window import prepare_display

        prepare_display(image)  # here, not on the GUI thread that shows it next
        return image

    return Job(f"open {session.name}", work, subject=session.path,
               on_result=lambda image: study.image_decoded(session, image),
               on_error=session.set_load_error)


def read_headers(paths: list[str]) -> Job:
    """Modality, size and frames of each file from its header (imaging.summary), one
    (path, HeaderSummary or None) published per file, so the study list fills at once."""

    def work(job: Job) -> None:
        from ..imaging.summary import header_summary

        for i, path in enumerate(paths):
            job.check_cancelled()
            job.publish((path, header_summary(path)))
            if i % 50 == 0:
                job.progress(i / max(len(paths), 1), f"reading headers ({i}/{len(paths)})")

    return Job(f"headers of {len(paths)} file(s)", work)


def classify(session: ImageSession, model: Any, model_name: str, frame: int = 0) -> Job:
    """The model's class probabilities for one frame; cached in the session per model."""
    image = session.image

    def work(_job: Job) -> Prediction:
        import torch

        from ..imaging.model_input import to_model_input
        from ..models.classifier import predict_proba

        try:
            x, _ = to_model_input(image, frame)
            probs = predict_proba(model, torch.from_numpy(x)[None])[0]
        except Exception as exc:
            raise JobFailed(f"{session.path}: cannot classify ({exc})") from None
        return Prediction(model_name, tuple(model.class_names), tuple(float(p) for p in probs),
                          model.card.positive_class, frame)

    return Job(f"classify {session.name}", work, subject=session.path,
               on_result=session.add_prediction)


def load_model(study: Study, name: str, device: str, *, surrogate: bool = False) -> Job:
    """Load a model (a zoo name or a model card path) on ``device``."""

    def work(job: Job) -> Any:
        # torch's import is most of a first load (seconds): say so rather than sit silent
        job.progress(-1, "importing torch…")
        from ..models.device import choose_device
        from ..models.zoo import load_model as zoo_load

        try:
            chosen = choose_device(device)
            job.progress(-1, f"building the network on {chosen}…")
            return zoo_load(name, chosen)
        except Exception as exc:
            raise JobFailed(f"{name}: {exc}") from None

    def done(model: Any) -> None:
        (study.set_surrogate if surrogate else study.set_model)(name, model)

    return Job(f"load {name}", work, on_result=done)


def attack(targets: list[tuple[ImageSession, int]], plugin: Any, model: Any, model_name: str,
           params: Any, *, targeted: bool, surrogate: Any = None, plugin_lookup: Any = None,
           seed: int = 0) -> Job:
    """Attack each (session, frame); each image's outcome lands in its own session as it
    is ready. A per-image failure is published as (session, message) and the rest go on;
    a universal attack is one run over all of them."""
    from ..models.fit import fit_problem

    jobs = [(s, s.image, frame) for s, frame in targets]
    class_names = tuple(model.class_names)
    warnings = {s.path: fit_problem(model.card, image) for s, image, _f in jobs}

    def run_one(job: Job, batch: Any, offset: int, n: int, levels: Any = None) -> Any:
        from ..engine.attack_runner import AttackCancelled, run_attack

        try:
            return run_attack(plugin, model, batch, targeted=targeted, params=params,
                              surrogate=surrogate, seed=seed,
                              progress=lambda f, m: job.progress((offset + f) / n, m),
                              cancelled=lambda: job.cancelled, plugin_lookup=plugin_lookup,
                              levels=levels)
        except AttackCancelled:
            raise Cancelled(f"{plugin.name}: cancelled") from None

    def universal(job: Job) -> None:
        batch = _universal_batch([(image, frame) for _s, image, frame in jobs])
        outcome = run_one(job, batch, 0, 1)
        first, image, _ = jobs[0]
        job.publish((first, AttackRun(outcome, batch[0].numpy(), None, image, 0, class_names,
                                      model_name, universal=True, n_images=len(jobs),
                                      fit_warning=warnings[first.path])))

    def per_image(job: Job) -> None:
        import torch

        from ..engine.attack_runner import AttackFailed
        from ..imaging.model_input import to_model_input

        for i, (session, image, frame) in enumerate(jobs):
            job.check_cancelled()
            try:
                x, mapping = to_model_input(image, frame)
                # measured on the stored values Export writes, not on unrounded floats
                outcome = run_one(job, torch.from_numpy(x)[None], i, len(jobs),
                                  levels=mapping.levels)
            except AttackFailed as exc:
                job.publish((session, str(exc)))
                continue
            except Cancelled:
                raise
            except Exception as exc:  # one image's failure never stops the others
                job.publish((session, f"{type(exc).__name__}: {exc}\n"
                             + traceback.format_exc(limit=-2)))
                continue
            job.publish((session, AttackRun(outcome, x, mapping, image, frame, class_names,
                                            model_name, fit_warning=warnings[session.path])))

    def work(job: Job) -> None:
        if getattr(plugin, "scope", "per-image") == "universal":
            try:
                universal(job)
            except (Cancelled, JobFailed):
                raise
            except Exception as exc:
                raise JobFailed(f"{plugin.name}: {type(exc).__name__}: {exc}") from None
        else:
            per_image(job)

    def land(item: tuple[ImageSession, Any]) -> None:
        session, run = item
        if isinstance(run, AttackRun):
            session.set_attack(run)

    return Job(f"{plugin.name} on {len(jobs)} image(s)", work, on_partial=land,
               subject=jobs[0][0].path if len(jobs) == 1 else None)


def _universal_batch(images: list[tuple[Any, int]]) -> Any:
    """One batch of all (image, frame): a universal attack trains over them together, so
    they are resized to one working size (and grey ones given three channels)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from ..imaging.model_input import to_model_input

    xs = []
    for image, frame in images:
        x, _ = to_model_input(image, frame)
        t = torch.from_numpy(x)[None]
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
        xs.append(F.interpolate(t, size=(UNIVERSAL_SIZE, UNIVERSAL_SIZE), mode="area"))
    return torch.cat(xs)


def detect(session: ImageSession, infos: list[Any], model: Any, model_name: str) -> Job:
    """Every detector in ``infos`` on the image, one after the other; each finding lands
    in the session as it is ready, and one bad detector never stops the others."""
    image = session.image

    def work(job: Job) -> None:
        from .. import api
        from ..engine.calibration import run_calibrated
        from ..engine.detector_runner import DetectorCancelled, DetectorFailed

        n = len(infos)
        for i, info in enumerate(infos):
            job.check_cancelled()
            job.progress(i / n, f"{info.name}…")
            try:
                det = info.create()
                out, cal, _note = run_calibrated(det, image, api.make_params(det.Params, {}),
                                                 model=model, cancelled=lambda: job.cancelled)
                job.publish((out, cal))
            except DetectorCancelled:
                raise Cancelled(f"detectors on {session.path}: cancelled") from None
            except DetectorFailed as exc:
                job.publish((info.name, str(exc)))
            except Exception as exc:
                job.publish((info.name, f"{type(exc).__name__}: {exc}"))
        job.progress(1.0, "done")

    def land(item: tuple[Any, Any]) -> None:
        if isinstance(item[0], str):  # (name, why it failed)
            session.add_failed_detector(*item)
        else:
            session.add_finding(*item)

    session.start_findings(model_name)
    return Job(f"detectors on {session.name}", work, subject=session.path, on_partial=land,
               on_result=lambda _r: session.finish_findings(),
               on_cancelled=session.finish_findings)


def _default_ledger(create: bool) -> Any:
    from ..home import ledger_file
    from ..provenance.ledger.store import Ledger

    if not create and not ledger_file().is_file():
        return None
    return Ledger(ledger_file())


def verify(session: ImageSession) -> Job:
    """Check the image against its capture record (and any standard signature)."""
    image = session.image

    def work(_job: Job) -> Any:
        from ..provenance.records.verify import verify_image

        ledger = None
        try:
            ledger = _default_ledger(create=False)
            return verify_image(session.path, image=image,
                                ledger=ledger if ledger is not None else False)
        except Exception as exc:
            raise JobFailed(f"{session.path}: cannot verify ({exc})") from None
        finally:
            if ledger is not None:
                ledger.close()

    return Job(f"verify {session.name}", work, subject=session.path,
               on_result=session.set_verification)


def sign(session: ImageSession, private_key: Any, *, force: bool = False,
         ask_on_refuse: bool = False) -> Job:
    """Sign the image by the same policy as `workbench sign` (session.signing_policy): an
    image that already has a valid record of ours is skipped, one whose file no longer
    matches its record is refused (unless ``force``). The job's result is the decision
    (its ``action`` says whether a record was written); with ``ask_on_refuse`` a refusal
    is returned too, for the GUI to ask whether to force, instead of failing."""
    image = session.image

    def work(_job: Job) -> Any:
        from .signing_policy import REFUSE, decide_signing, sign_as_decided

        ledger = None
        try:
            decision = decide_signing(session.path, image, force=force)
            if decision.action == REFUSE and not ask_on_refuse:
                raise JobFailed(f"not signed: {decision.reason}")
            if decision.signs:
                ledger = _default_ledger(create=True)
                sign_as_decided(decision, private_key, ledger=ledger)
            return decision
        except JobFailed:
            raise
        except Exception as exc:
            raise JobFailed(f"{session.path}: cannot sign ({exc})") from None
        finally:
            if ledger is not None:
                ledger.close()

    return Job(f"sign {session.name}", work, subject=session.path)


def report(paths: list[str], out: str, model: Any, model_name: str,
           detectors: list[Any]) -> Job:
    """A case report of ``paths``: HTML written to ``out`` (with its SHA-256 beside it),
    or, for a PDF, the HTML handed back for the GUI to print (Qt's text document must
    print on the GUI thread)."""

    def work(_job: Job) -> str:
        from ..report.case_report import build_case, fingerprint_report, render_html

        try:
            cases = [build_case(p, model=model, model_name=model_name, detectors=detectors)
                     for p in paths]
            html = render_html(cases)
            if out.lower().endswith(".pdf"):
                return html
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(html)
            fingerprint_report(out)
            return ""
        except Exception as exc:
            raise JobFailed(f"{out}: cannot write the report ({exc})") from None

    return Job(f"report {Path(out).name}", work)
