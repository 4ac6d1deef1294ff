"""A reader's answers: STUDY_DIR/answers/<reader>.jsonl, one JSON object per line,

    {"case": "case_007", "authentic": "real"|"manipulated", "diagnosis": "nevus",
     "confidence": 1..5, "seconds": 12.4, "answered_at": "2025-01-31T10:02:11Z"}

appended with one write and fsynced before ``answer`` returns, so a crash (or a power
cut) loses nothing that was answered. A crash in the middle of that write leaves a torn
last line: reading tolerates it and reports it; opening a session for the reader repairs
the file (a complete record that only lacks its newline is kept, anything else of the
torn line is cut off) so the next answer starts on a line of its own.

:class:`ReaderSession` is what a reader GUI builds on: the cases in order, the next
unanswered one (so a session resumes where it stopped), recording an answer, and the
time spent on the case shown (pause/resume stop and restart its clock). It uses only the
public study.json, never the key, and imports neither Qt nor numpy.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .layout import AUTHENTIC, CONFIDENCE, Study, StudyError, load_study

READER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FIELDS = ("case", "authentic", "diagnosis", "confidence", "seconds", "answered_at")


class AnswerError(StudyError):
    """An answer that cannot be recorded, or an answer file that cannot be read."""


@dataclass(frozen=True)
class Answer:
    case: str
    authentic: str  # "real" or "manipulated"
    diagnosis: str  # one of the study's class names
    confidence: int  # 1..5
    seconds: float  # time the case was shown, pauses excluded
    answered_at: str  # UTC, ISO 8601

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class AnswerLog:
    """What an answer file holds: its answers in file order, and what was wrong."""

    reader: str
    answers: list[Answer]
    torn: str | None = None  # the torn last line (a crash mid-write), not an answer
    duplicates: tuple[str, ...] = ()  # cases answered again (the first answer counts)


def answers_dir(study_dir: str | os.PathLike[str]) -> Path:
    return Path(study_dir) / "answers"


def answer_file(study_dir: str | os.PathLike[str], reader: str) -> Path:
    if not READER_NAME.fullmatch(reader or ""):
        raise AnswerError(f"reader name {reader!r}: use 1-64 letters, digits, '.', '_' or "
                          "'-', starting with a letter or digit")
    return answers_dir(study_dir) / f"{reader}.jsonl"


def _check(study: Study, case: str, authentic: str, diagnosis: str, confidence: int,
           seconds: float) -> None:
    if case not in study.images:
        raise AnswerError(f"no case {case!r} in the study")
    if authentic not in AUTHENTIC:
        raise AnswerError(f"authentic must be one of {', '.join(AUTHENTIC)}, not "
                          f"{authentic!r}")
    if diagnosis not in study.class_names:
        raise AnswerError(f"diagnosis must be one of {', '.join(study.class_names)}, not "
                          f"{diagnosis!r}")
    if isinstance(confidence, bool) or confidence not in CONFIDENCE:
        raise AnswerError(f"confidence must be a whole number 1-5, not {confidence!r}")
    if not isinstance(seconds, int | float) or not seconds >= 0:
        raise AnswerError(f"seconds must be a number of at least 0, not {seconds!r}")


def _parse(line: str, where: str) -> Answer:
    try:
        obj = json.loads(line)
        return Answer(str(obj["case"]), str(obj["authentic"]), str(obj["diagnosis"]),
                      int(obj["confidence"]), float(obj["seconds"]),
                      str(obj.get("answered_at", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnswerError(f"{where}: not an answer record ({exc})") from None


def read_answers(path: str | os.PathLike[str]) -> AnswerLog:
    """The answers of one file (none when it does not exist). A torn last line is
    reported in ``torn``, not raised; a bad line elsewhere is an :class:`AnswerError`."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return AnswerLog(path.stem, [])
    except OSError as exc:
        raise AnswerError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = text.split("\n")
    last = lines.pop()  # after the final newline: "" unless the last write was torn
    answers, torn = [], None
    for no, line in enumerate(lines, 1):
        if line.strip():
            answers.append(_parse(line, f"{path}:{no}"))
    if last.strip():
        try:
            answers.append(_parse(last, f"{path}:{len(lines) + 1}"))
        except AnswerError:
            torn = last
    seen: set[str] = set()
    dups = []
    for a in answers:
        if a.case in seen:
            dups.append(a.case)
        seen.add(a.case)
    return AnswerLog(path.stem, answers, torn, tuple(dups))


def _repair(path: Path) -> str | None:
    """Cut a torn last line off the file (keeping a complete record that only lacks
    its newline); returns what was cut, or None when nothing was torn."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n") + 1
    last = data[cut:].decode("utf-8", errors="replace")
    try:
        _parse(last, str(path))
        keep, torn = data + b"\n", None  # the record was whole: only its newline was lost
    except AnswerError:
        keep, torn = data[:cut], last
    with open(path, "r+b") as f:
        f.seek(0)
        f.write(keep)
        f.truncate(len(keep))
        f.flush()
        os.fsync(f.fileno())
    return torn


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable (POSIX; Windows has no such call)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_answer(path: Path, answer: Answer) -> None:
    """Append one record with a single write, then fsync it."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(answer.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0),
                 0o644)
    try:
        view = memoryview(data)
        while view:  # a short write (a full disk) goes on, or raises
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _fsync_dir(path.parent)


class ReaderSession:
    """One reader going through a study, resumable. Not thread-safe; one session per
    reader at a time (two writers of one file would interleave their answers).

    >>> s = ReaderSession(study_dir, "reader1")
    >>> case = s.next_case()            # None when every case is answered
    >>> s.image_path(case)              # the file to show
    >>> s.pause(); s.resume()           # e.g. while the window is hidden
    >>> s.answer(case, "real", "nevus", 4)   # seconds: the case's clock, unless given
    """

    def __init__(self, study_dir: str | os.PathLike[str], reader: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.study = load_study(study_dir)
        self.reader = reader
        self.path = answer_file(study_dir, reader)
        self.recovered_torn_line = _repair(self.path)  # what a crash left half-written
        log = read_answers(self.path)
        self.answers: dict[str, Answer] = {}
        for a in log.answers:
            self.answers.setdefault(a.case, a)
        self._clock = clock
        self._current: str | None = None
        self._spent = 0.0  # seconds on the current case before its clock last started
        self._since: float | None = None  # when the clock last started; None: stopped
        self.paused = False

    # --- what the study holds ---------------------------------------------------------
    @property
    def cases(self) -> tuple[str, ...]:
        return self.study.cases

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.study.class_names

    @property
    def blocks(self) -> tuple[tuple[str, ...], ...]:
        """The reading sessions in order; a GUI may offer a break between them."""
        return self.study.blocks

    def image_path(self, case: str) -> Path:
        return self.study.image_path(case)

    @property
    def remaining(self) -> list[str]:
        return [c for c in self.cases if c not in self.answers]

    @property
    def done(self) -> bool:
        return not self.remaining

    # --- reading ------------------------------------------------------------------------
    def next_case(self) -> str | None:
        """The first unanswered case in reading order (the one to show now), or None.
        Its clock starts when it is first returned (unless the session is paused)."""
        case = next((c for c in self.cases if c not in self.answers), None)
        if case is not None and case != self._current:
            self._current, self._spent = case, 0.0
            self._since = None if self.paused else self._clock()
        return case

    def elapsed(self) -> float:
        """Seconds the current case has been shown, pauses excluded."""
        running = self._clock() - self._since if self._since is not None else 0.0
        return self._spent + running

    def pause(self) -> None:
        """Stop the current case's clock (the image should be hidden meanwhile)."""
        if not self.paused:
            self._spent = self.elapsed()
            self._since = None
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._since = self._clock() if self._current is not None else None

    def answer(self, case: str, authentic: str, diagnosis: str, confidence: int,
               seconds: float | None = None) -> Answer:
        """Record the answer to ``case`` (durably: on disk when this returns). ``seconds``
        defaults to the clock of the case :meth:`next_case` returned. A case is answered
        once: a second answer is refused."""
        if case in self.answers:
            raise AnswerError(f"{case} is already answered by {self.reader}")
        if seconds is None:
            if case != self._current:
                raise AnswerError(f"{case} is not the case shown; give its seconds")
            seconds = self.elapsed()
        _check(self.study, case, authentic, diagnosis, confidence, seconds)
        record = Answer(case, authentic, diagnosis, int(confidence), round(float(seconds), 3),
                        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        append_answer(self.path, record)
        self.answers[case] = record
        if case == self._current:
            self._current, self._since, self._spent = None, None, 0.0
        return record
