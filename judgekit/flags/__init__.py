"""Incoherence flags: column-wide text statistics, the detectors and their combined rule, model-backed scores."""
