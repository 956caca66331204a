"""Guards on untrusted input: the only model loader (:mod:`judgekit.guards.model_gate`) and time limits on
user templates and parsers (:mod:`judgekit.guards.time_limit`)."""
