"""Wall time split into JAX compilation and the rest.

JAX compiles a jitted function the first time it sees its shapes; in a sweep the first
method to run on a program pays for the pieces every later method reuses, so plain wall
times depend on the order methods ran in. ``Clock`` adds up the compile events JAX reports
(``jax.monitoring``: tracing to a jaxpr, lowering to MLIR, XLA's backend compile) while it
is open, so a run reports ``compile_seconds`` and ``seconds - compile_seconds`` apart.

    with Clock() as c:
        run_method()
    c.seconds, c.compile_seconds, c.run_seconds
"""

from __future__ import annotations

import time

COMPILE_EVENTS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})

_open: list[Clock] = []
_registered = False


def _listener(event: str, duration_secs: float, **_kw) -> None:
    if event in COMPILE_EVENTS:
        for clock in _open:
            clock.compile_seconds += duration_secs


class Clock:
    """``with Clock() as c:`` then ``c.seconds`` (wall), ``c.compile_seconds`` (JAX
    compiling inside the block) and ``c.run_seconds`` (the difference)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.compile_seconds = 0.0

    @property
    def run_seconds(self) -> float:
        return max(0.0, self.seconds - self.compile_seconds)

    def __enter__(self) -> Clock:
        global _registered
        if not _registered:
            import jax.monitoring

            jax.monitoring.register_event_duration_secs_listener(_listener)
            _registered = True
        _open.append(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        _open.remove(self)


__all__ = ["Clock", "COMPILE_EVENTS"]
