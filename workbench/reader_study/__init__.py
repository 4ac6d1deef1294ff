"""Blinded reader studies: can readers tell real images from manipulated ones, and does
a manipulation change their diagnosis (Zhou et al. 2021: five radiologists, 29%-71%
right on real vs fake mammograms; Du-Harpur et al. 2021: four dermatologists on 204
images, half adversarial, no significant change in accuracy by McNemar's test, while the
CNN was fooled)?

- build.py: ``build_study(StudySpec)``: a seeded, shuffled mix of originals and
  manipulated images, written alike, with the answer key kept apart (key.json);
- answers.py: ``ReaderSession``: one reader's resumable, crash-safe answers;
- score.py: ``score_study`` and ``write_score``: accuracy with intervals, McNemar or
  Fisher, the model on the same images, Fleiss' kappa; Markdown, JSON and plots.

Headless: no Qt here (the reader window is in workbench.gui); torch is imported only
while a study is built.
"""

from __future__ import annotations

from .answers import Answer, AnswerError, ReaderSession, read_answers
from .layout import Study, StudyCancelled, StudyError, load_study

__all__ = ["Answer", "AnswerError", "ReaderSession", "Study", "StudyCancelled", "StudyError",
           "load_study", "read_answers"]
