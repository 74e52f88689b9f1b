"""Per-model server behaviour: each model's own progress shape and estimates.

`Simulator(progress={"mj-v7": SteppedProgress(25)}, estimates={"veo3": Estimates(factor=2)})`
gives those models their own behaviour and every other model the default, as
`durations={...}` (`ByModel`) does for durations: with 127 models, a client meets many
servers at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import attrs

from evolink.testing._estimates import Estimates
from evolink.testing._progress_models import LINEAR_PROGRESS, ProgressModel

_T = TypeVar("_T")


def _pick(
    models: tuple[tuple[str, _T], ...], default: _T, model: str, names: tuple[str, ...]
) -> _T:
    listed = dict(models)
    for name in (*names, model):
        if name in listed:
            return listed[name]
    return default


def _progress_models(
    value: Mapping[str, ProgressModel] | tuple[tuple[str, ProgressModel], ...],
) -> tuple[tuple[str, ProgressModel], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple((str(name), model) for name, model in items)
    for name, model in pairs:
        if not isinstance(model, ProgressModel):
            raise TypeError(f"progress for {name!r}: expected a progress model: {model!r}")
    return pairs


def _estimates(
    value: Mapping[str, Estimates] | tuple[tuple[str, Estimates], ...],
) -> tuple[tuple[str, Estimates], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple((str(name), estimates) for name, estimates in items)
    for name, estimates in pairs:
        if not isinstance(estimates, Estimates):
            raise TypeError(f"estimates for {name!r}: expected Estimates(...): {estimates!r}")
    return pairs


@attrs.frozen
class ProgressByModel:
    """Progress shapes per model: `ProgressByModel({"mj-v7": SteppedProgress(25)})`.

    A model not listed reports `default` (linear). `Simulator(progress={...})` builds one.
    """

    models: tuple[tuple[str, ProgressModel], ...] = attrs.field(converter=_progress_models)
    default: ProgressModel = attrs.field(default=LINEAR_PROGRESS, kw_only=True)

    def for_model(self, model: str, *names: str) -> ProgressModel:
        """The shape `model`'s tasks report (or that of another name it was asked by)."""
        return _pick(self.models, self.default, model, names)

    def percent(self, fraction: float) -> int:
        """The default shape's percent (a model-less task)."""
        return self.default.percent(fraction)


@attrs.frozen
class EstimatesByModel:
    """Estimates per model: `EstimatesByModel({"veo3": Estimates(factor=2.0)})`.

    A model not listed gets `default` (honest, within 15%). `Simulator(estimates={...})`
    builds one.
    """

    models: tuple[tuple[str, Estimates], ...] = attrs.field(converter=_estimates)
    default: Estimates = attrs.field(factory=Estimates, kw_only=True)

    def for_model(self, model: str, *names: str) -> Estimates:
        """The estimates `model`'s tasks get (or those of another name it was asked by)."""
        return _pick(self.models, self.default, model, names)


def progress_for(progress: ProgressModel, model: str, *names: str) -> ProgressModel:
    """The progress shape of a task of `model`."""
    if isinstance(progress, ProgressByModel):
        return progress.for_model(model, *names)
    return progress


def estimates_for(estimates: Estimates | EstimatesByModel, model: str, *names: str) -> Estimates:
    """The estimates of a task of `model`."""
    if isinstance(estimates, EstimatesByModel):
        return estimates.for_model(model, *names)
    return estimates


def as_progress(value: ProgressModel | Mapping[str, ProgressModel]) -> ProgressModel:
    """A progress model, or a mapping of model to progress models (`ProgressByModel`)."""
    if isinstance(value, Mapping):
        return ProgressByModel(value)
    return value


def as_estimates(
    value: Estimates | EstimatesByModel | Mapping[str, Estimates] | None,
) -> Estimates | EstimatesByModel | None:
    """`Estimates`, or a mapping of model to `Estimates` (`EstimatesByModel`), or None."""
    if isinstance(value, Mapping):
        return EstimatesByModel(value)
    return value
