"""Flows: named, resumable steps that each take and return an artifact under one build folder."""

from .core import Flow, Step, StepContext

__all__ = ["Flow", "Step", "StepContext"]
