"""What users see, drawn from the stats tables and a loaded ``Study`` (nothing recomputed):
``style`` (one look for every figure), ``figures`` and ``finetune_figures`` (PDF + PNG),
``tables`` (Markdown and LaTeX), ``report`` (one self-contained HTML file)."""
