"""Test and benchmark support, never used by the pipeline: random-weight replicas of the
judge architectures built locally (no downloads) and an OpenAI-compatible server over one."""
