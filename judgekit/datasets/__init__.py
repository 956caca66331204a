"""Public human-labelled judge-evaluation datasets: adapters into study directories, and fetching.

Each adapter reads a dataset's own files and returns the study tables
(``responses``, ``annotations``, and the judge predictions it ships as
``judgments``) plus its ``study.json`` metadata. See :mod:`.registry`.
"""
