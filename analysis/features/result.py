"""One result type for every feature method: a score per (variable, site), plus extras.

A method's ``run(model, truth, *, site, variable, seed)`` returns a :class:`FeatureReport`:
one :class:`VariableScore` per (variable, site) it scored, each carrying the truth there
(``present``, ``used``) and the method's named scores, e.g.

* probes: ``accuracy``, ``control_accuracy``, ``selectivity``, ``chance`` (and ``r2`` for a
  numerical variable);
* DAS: ``iia``, ``overlap``;
* SAEs: ``mcc``, ``f1`` (and whatever else they measure);
* DLA / logit lens: ``lens_accuracy`` of the output variable per site;

and, where a method scores components rather than variables (DLA), one
:class:`ComponentScore` per component with whether the planted circuit says it writes the
output. ``report.to_json()`` is what ``rasplab features --json`` prints.

Scores are plain floats (``nan`` where undefined; ``to_json`` writes those as ``null``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Method(StrEnum):
    """The feature methods."""

    PROBE = "probe"
    DLA = "dla"
    SAE = "sae"
    DAS = "das"


#: The score a method's plots and tables lead with.
MAIN_SCORE: dict[Method, str] = {
    Method.PROBE: "selectivity",
    Method.DLA: "lens_accuracy",
    Method.SAE: "mcc",
    Method.DAS: "iia",
}


def _num(x):
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return None if math.isnan(x) else x
    return x


@dataclass(frozen=True, eq=False)
class VariableScore:
    """A method's scores for one variable at one site."""

    name: str  # the variable
    site: str  # the residual site (TransformerLens hook name)
    method: Method
    present: bool
    used: bool
    scores: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "scores", dict(self.scores))

    def score(self, key: str | None = None) -> float:
        """A named score (default: the method's main one); ``nan`` if absent."""
        key = key or MAIN_SCORE[self.method]
        value = self.scores.get(key)
        return float("nan") if value is None else float(value)

    @property
    def stale(self) -> bool:
        """Present but not used downstream: whatever decodes it reads a dead variable."""
        return self.present and not self.used

    def to_json(self) -> dict:
        out = {"name": self.name, "site": self.site, "method": self.method.value,
               "present": self.present, "used": self.used, "stale": self.stale}
        out.update({k: _num(v) for k, v in self.scores.items()})
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True, eq=False)
class ComponentScore:
    """A method's scores for one component (``L3.H0``, ``L4.MLP``, ``embed``, ``pos``)."""

    name: str
    writes_output: bool  # the planted circuit has a structural edge from it to output
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "scores", dict(self.scores))

    def to_json(self) -> dict:
        return {"name": self.name, "writes_output": self.writes_output,
                **{k: _num(v) for k, v in self.scores.items()}}


@dataclass(frozen=True, eq=False)
class FeatureReport:
    """What one method found on one model, scored against the feature truth."""

    method: Method
    program: str
    rung: str
    is_exact: bool
    variables: tuple[VariableScore, ...]
    seed: int = 0
    samples: int = 0  # inputs the truth was built on
    model_accuracy: float | None = None  # an approximate model's measured accuracy
    summary: Mapping[str, float] = field(default_factory=dict)  # method-level numbers
    components: tuple[ComponentScore, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "summary", dict(self.summary))

    @property
    def main_score(self) -> str:
        return MAIN_SCORE[self.method]

    def get(self, variable: str, site: str) -> VariableScore:
        for v in self.variables:
            if v.name == variable and v.site == site:
                return v
        raise KeyError(f"no score for {variable!r} at {site!r}")

    def matrix(self, key: str | None = None) -> tuple[list[str], list[str], np.ndarray]:
        """``(variables, sites, M)`` with ``M[i, j]`` the score ``key`` (default: the main
        one) of variable ``i`` at site ``j`` (``nan`` where not scored)."""
        names = list(dict.fromkeys(v.name for v in self.variables))
        sites = list(dict.fromkeys(v.site for v in self.variables))
        m = np.full((len(names), len(sites)), np.nan)
        for v in self.variables:
            m[names.index(v.name), sites.index(v.site)] = v.score(key)
        return names, sites, m

    def to_json(self) -> dict:
        out = {"method": self.method.value, "program": self.program, "rung": self.rung,
               "is_exact": self.is_exact, "model_accuracy": _num(self.model_accuracy),
               "seed": self.seed, "samples": self.samples, "main_score": self.main_score,
               "variables": [v.to_json() for v in self.variables],
               "summary": {k: _num(v) for k, v in self.summary.items()}}
        if self.components:
            out["components"] = [c.to_json() for c in self.components]
        if self.notes:
            out["notes"] = list(self.notes)
        if self.seconds is not None:
            out["seconds"] = round(float(self.seconds), 3)
        return out

    def table(self, keys: tuple[str, ...] | None = None) -> str:
        """A text table: one row per (variable, site)."""
        if keys is None:
            keys = tuple(dict.fromkeys(k for v in self.variables for k in v.scores))
        head = ["variable", "site", "present", "used", *keys]
        rows = [head]
        for v in self.variables:
            cells = [v.name, v.site, "yes" if v.present else "no", "yes" if v.used else "no"]
            for k in keys:
                x = v.scores.get(k)
                cells.append("-" if x is None or (isinstance(x, float) and math.isnan(x))
                             else f"{x:.3f}" if isinstance(x, float) else str(x))
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                         for r in rows)


__all__ = ["Method", "MAIN_SCORE", "VariableScore", "ComponentScore", "FeatureReport"]
