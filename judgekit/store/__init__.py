"""The study store: a study's tables on disk, their schemas and checks, locks, manifests and output folders.

The ground floor: every step reads and writes a study through these modules, and they import nothing of
judgekit above them (only :mod:`judgekit.errors`).
"""
