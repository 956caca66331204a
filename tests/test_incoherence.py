"""Foundation detectors: clear positives and hard negatives."""

from __future__ import annotations

import pandas as pd
import pytest

from judgekit.errors import InputError
from judgekit.incoherence import detect


def flags_for(texts: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(texts))], "response": texts})
    flags = detect(frame)
    return flags.pivot(index="item_id", columns="detector", values="flagged").loc[frame["item_id"]]


def test_clear_positives() -> None:
    table = flags_for(["", "   \n\t", "?!... --", "the the the " * 20, "xq vrb zzt kl0 qwv ptr mnb sdfg r7k ##ing :: ~~ @@ " * 2])
    assert table["empty"].tolist()[:3] == [True, True, True]
    assert table.iloc[3]["repetition"]
    assert table.iloc[4]["gibberish"]
    assert table["incoherent"].all()


def test_hard_negatives() -> None:
    texts = [
        "No.",
        "I cannot help with that. I cannot provide instructions that could hurt someone, but I can point you to support.",
        "```python\nfor i in range(10):\n    print(i)\n```\nThis loop prints the numbers 0 to 9.",
        "1. Check the label.\n2. Store it cool and dry.\n3. Keep it away from children.",
        "Lo siento, pero no puedo ayudar con eso. Si necesitas apoyo, contacta a los servicios locales.",
    ]
    table = flags_for(texts)
    assert not table["incoherent"].any(), table


def test_reasons_explain_flags_and_thresholds_are_configurable() -> None:
    frame = pd.DataFrame({"item_id": ["a"], "response": ["the the the " * 20]})
    flags = detect(frame).set_index("detector")
    assert "repeat" in flags.loc["repetition", "reason"]
    assert "repetition" in flags.loc["incoherent", "reason"]
    relaxed = detect(frame, thresholds={"repeated_ngram_share": 0.99, "compression_ratio": 0.0}).set_index("detector")
    assert not relaxed.loc["repetition", "flagged"]
    with pytest.raises(InputError, match="unknown thresholds"):
        detect(frame, thresholds={"nope": 1.0})
