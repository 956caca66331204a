"""Automated safety judges. Backends load lazily; see :mod:`judgekit.judges.build`."""
