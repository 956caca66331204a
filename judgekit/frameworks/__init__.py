"""Files of evaluation frameworks (Inspect AI, lm-evaluation-harness, Hugging Face ``datasets``) read and written.

Nothing here imports the frameworks themselves: logs are read from their
on-disk formats, so a study can be built on a machine without them. The one
exception is :mod:`judgekit.inspect` (an Inspect scorer), imported only by
Inspect or by the user.
"""
