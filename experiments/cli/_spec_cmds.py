"""Placeholder wiring; the owning issue fills in the verbs."""

from __future__ import annotations


def register(verbs) -> None:
    """Add this module's verbs to ``katib experiment``."""
