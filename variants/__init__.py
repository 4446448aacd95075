"""Realistic variants of compiled models (the realism ladder): each keeps a known circuit.

Submodules are imported on use (``from rasplab.variants.compressed import compress``);
importing this package imports nothing else, so the CLI's start-up stays JAX-free.
"""
