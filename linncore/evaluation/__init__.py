"""Deviation reports of a network against a reference, their callback and plots."""

from .report import DeviationReport, EvaluationCallback, evaluate

__all__ = ["evaluate", "DeviationReport", "EvaluationCallback"]
