"""The names analysis accepts, importable without JAX (the command line reads its choices
from here): ablations and circuit-recovery methods."""

from __future__ import annotations

from enum import StrEnum


class Ablation(StrEnum):
    """What a patched edge or node receives in place of the clean value."""

    ZERO = "zero"  # zeros
    MEAN = "mean"  # the per-position mean over a reference batch
    RESAMPLE = "resample"  # the value on a paired corrupted input


ABLATIONS: tuple[str, ...] = tuple(a.value for a in Ablation)


class Metric(StrEnum):
    """How far a patched run's read-out is from the clean one (``analysis/methods``)."""

    DISTANCE = "distance"  # squared L2 distance from the clean read-out, real positions
    PROJECTION = "projection"  # on (clean - fully ablated): first-order methods


METRICS: tuple[str, ...] = tuple(m.value for m in Metric)

#: Circuit-recovery methods, one module each in ``analysis/methods/`` (``-`` or ``_``).
METHOD_NAMES: tuple[str, ...] = ("patching", "acdc", "eap", "eap_ig", "sp")


def method_choices() -> list[str]:
    """Method names as the command line spells them (``eap-ig``)."""
    return [m.replace("_", "-") for m in METHOD_NAMES]


__all__ = ["Ablation", "ABLATIONS", "Metric", "METRICS", "METHOD_NAMES", "method_choices"]
