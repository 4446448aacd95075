"""The residual stream as named directions.

Two special directions: ``one`` is 1 at every real token position and 0 at BOS (it carries
the constants of MLPs, so every MLP writes exactly zero at BOS), and ``bos`` is 1 at BOS
only (the attention sink). A categorical variable ``x`` owns one direction per value,
labelled ``x:value``; ``None`` is the zero vector. A numerical variable owns one direction
``x`` holding its value. Internal scratch directions (the 1/(w+1) a SelectorWidth head
writes) are labelled ``x:__width__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ONE = "one"
BOS = "bos"


@dataclass(frozen=True)
class Direction:
    """A residual direction: ``var`` with ``value`` (categorical) or ``None`` (numerical)."""

    var: str
    value: object = None
    role: str = "value"  # "value" | "special" | "scratch"

    @property
    def label(self) -> str:
        if self.role == "special":
            return self.var
        if self.role == "scratch":
            return f"{self.var}:__{self.value}__"
        if self.value is None:
            return self.var
        return f"{self.var}:{self.value}"


@dataclass
class ResidualSpace:
    """An ordered list of directions with lookup by (var, value)."""

    directions: list[Direction] = field(default_factory=list)
    _index: dict[tuple, int] = field(default_factory=dict, repr=False)
    _by_var: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def add(self, d: Direction) -> int:
        key = (d.var, d.role, _hashable(d.value))
        if key in self._index:
            raise ValueError(f"duplicate residual direction {d.label}")
        self._index[key] = len(self.directions)
        if d.role == "value":
            self._by_var.setdefault(d.var, []).append(len(self.directions))
        self.directions.append(d)
        return self._index[key]

    @property
    def dim(self) -> int:
        return len(self.directions)

    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.directions]

    def special(self, name: str) -> int:
        return self._index[(name, "special", _hashable(None))]

    def scratch(self, var: str, what: str) -> int:
        return self._index[(var, "scratch", _hashable(what))]

    def value_dim(self, var: str, value: object) -> int:
        return self._index[(var, "value", _hashable(value))]

    def numeric_dim(self, var: str) -> int:
        return self._index[(var, "value", _hashable(None))]

    def var_dims(self, var: str) -> list[int]:
        return list(self._by_var.get(var, []))

    def has_var(self, var: str) -> bool:
        return var in self._by_var


def _hashable(v: object) -> object:
    # 1, 1.0 and True are one value to the interpreter (==), so one direction here.
    if isinstance(v, (bool, int, float)) and not isinstance(v, str):
        return ("num", float(v))
    return ("obj", v)
