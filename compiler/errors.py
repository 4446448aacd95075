"""Errors the compiler and the model raise for input a user can fix."""


class CompileError(ValueError):
    """The program cannot be compiled exactly; the message names the expression and why."""


class InputError(ValueError):
    """An input sequence is not in the model's domain (unknown token, too long, no BOS)."""


class ModelFileError(ValueError):
    """A model file is missing, truncated, tampered with, or not a rasplab model."""
