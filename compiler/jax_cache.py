"""JAX's persistent compilation cache for rasplab: compiled XLA programs are kept on disk,
so a repeated ``rasplab run`` or ``rasplab recover`` skips most of XLA's compile time.

The cache lives in ``$RASPLAB_JAX_CACHE`` if set, else ``$XDG_CACHE_HOME/rasplab/jax``
(``~/.cache/rasplab/jax``). It is safe to delete at any time; ``RASPLAB_JAX_CACHE=off``
turns it off. Every compiled program is cached, however fast it compiled: rasplab's small
models compile in well under JAX's default one-second threshold.
"""

from __future__ import annotations

import os
from pathlib import Path

_done = False


def cache_dir() -> Path | None:
    """Where compiled programs are cached, or None when caching is off."""
    env = os.environ.get("RASPLAB_JAX_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "false", "no") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rasplab" / "jax"


def enable() -> Path | None:
    """Turn the cache on (once per process); returns its folder."""
    global _done
    path = cache_dir()
    if _done or path is None:
        return path
    import jax

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: run without the cache
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _done = True
    return path


__all__ = ["enable", "cache_dir"]
