"""A plugin's parameters: how they are declared, and THE one check of a declaration and
of the values a user gives.

Discovery, ``workbench plugin check``, the command line's ``--param`` and the GUI's form
all ask :func:`params_problems` whether a ``Params`` declaration is usable and
:func:`make_params` whether values are, so none of them can accept what another rejects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The types a form can offer and ``--param`` can parse (annotations may be strings, with
# ``from __future__ import annotations``, or the types themselves).
PARAM_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


def param(default: Any, *, min: float | None = None, max: float | None = None,  # noqa: A002
          step: float | None = None, choices: tuple | list | None = None, help: str = "",  # noqa: A002
          label: str = "") -> Any:
    """A ``Params`` field with what a form or a command line needs to offer it."""
    meta = {"min": min, "max": max, "step": step, "choices": tuple(choices) if choices else None,
            "help": help, "label": label}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple | None = None
    help: str = ""
    label: str = ""


class ParamError(ValueError):
    """A parameter declaration, or a value, outside its declared type, range or choices."""


def _declared_type(f: dataclasses.Field) -> type | None:
    """The field's type when it is one of PARAM_TYPES, else None."""
    return PARAM_TYPES.get(_type_name(f))


def _type_name(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def params_problems(params_cls: Any) -> list[str]:
    """What is wrong with a ``Params`` dataclass, one precise sentence per problem (empty:
    it is usable). Every user of a declaration asks this, and only this."""
    if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
        return ["Params is not a dataclass (decorate it with @dataclass)"]
    problems = []
    for f in dataclasses.fields(params_cls):
        where = f"Params.{f.name}"
        kind = _declared_type(f)
        if kind is None:
            problems.append(f"{where} is declared {_type_name(f)}: forms and --param offer "
                            "only float, int, bool and str")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{where} has no default (write it with param(DEFAULT, ...))")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if kind is not None and not _is_a(default, kind):
            problems.append(f"{where} default {default!r} is a {type(default).__name__}, "
                            f"declared {kind.__name__}")
        problems += _metadata_problems(where, default, f.metadata)
    return problems


def _metadata_problems(where: str, default: Any, meta: Any) -> list[str]:
    """Range, choices and step of one field against its default."""
    problems = []
    lo, hi, step, choices = (meta.get(k) for k in ("min", "max", "step", "choices"))
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"{where} min {lo} is above its max {hi}")
    if _is_number(default):
        if lo is not None and default < lo:
            problems.append(f"{where} default {default} is below its min {lo}")
        if hi is not None and default > hi:
            problems.append(f"{where} default {default} is above its max {hi}")
    if choices and default not in choices:
        problems.append(f"{where} default {default!r} is not one of its choices "
                        f"{list(choices)}")
    if step is not None and not step > 0:
        problems.append(f"{where} step {step} is not positive")
    return problems


def _is_a(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return _is_number(value)
    return isinstance(value, kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def param_specs(params_cls: type) -> list[ParamSpec]:
    """The declared parameters of a ``Params`` dataclass, in declaration order. Raises
    :class:`ParamError` naming every problem when the declaration is not usable (so a
    form or a command line is never built from one)."""
    problems = params_problems(params_cls)
    if problems:
        raise ParamError("; ".join(problems))
    out = []
    for f in dataclasses.fields(params_cls):
        m = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(ParamSpec(f.name, _declared_type(f), default, m.get("min"), m.get("max"),
                             m.get("step"), m.get("choices"), m.get("help", ""),
                             m.get("label", "")))
    return out


def _convert(spec: ParamSpec, value: Any) -> Any:
    """``value`` (as typed on a command line, or from a widget) as the spec's type; a
    lossy conversion (2.5 for an int) is an error, not a silent truncation."""
    if spec.type is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ParamError(f"{spec.name}: expected true or false, got {value!r}")
        return bool(value)
    try:
        converted = spec.type(value)
    except (TypeError, ValueError):
        raise ParamError(f"{spec.name}: expected {spec.type.__name__}, got {value!r}") from None
    if spec.type is int and isinstance(value, float) and converted != value:
        raise ParamError(f"{spec.name}: expected int, got {value!r}")
    return converted


def make_params(params_cls: type, values: dict[str, Any] | None = None) -> Any:
    """An instance of ``params_cls`` from user values (strings allowed), checked against
    each field's type, range and choices. Unknown names are an error, and so is a
    declaration that :func:`params_problems` rejects."""
    specs = {s.name: s for s in param_specs(params_cls)}
    values = dict(values or {})
    unknown = set(values) - set(specs)
    if unknown:
        raise ParamError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(specs)}")
    kwargs = {}
    for name, spec in specs.items():
        v = _convert(spec, values[name]) if name in values else spec.default
        if spec.choices and v not in spec.choices:
            raise ParamError(f"{name}: {v!r} is not one of {list(spec.choices)}")
        if spec.min is not None and v < spec.min:
            raise ParamError(f"{name}: {v} is below the minimum {spec.min}")
        if spec.max is not None and v > spec.max:
            raise ParamError(f"{name}: {v} is above the maximum {spec.max}")
        kwargs[name] = v
    return params_cls(**kwargs)
