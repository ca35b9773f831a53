"""Verbs of the ``fastml-lab`` command line, one module per pipeline area."""
