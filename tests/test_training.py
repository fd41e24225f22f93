"""The reader's training script: settings that depend on the machine, the synthetic unanswerable twins, and
training on from int8 weights."""

import pytest

from qa.weights import train_reader as tr

tr_slow = pytest.mark.slow


def test_bf16_only_where_the_cpu_has_it(monkeypatch):
    flags = {"amx": "flags : fpu sse2 avx2 amx_bf16 amx_int8\n", "avx512": "flags : fpu avx512f avx512_bf16\n",
             "epyc": "flags : fpu sse2 avx2 avx512f\n"}
    real = tr.Path.read_text
    for name, want in (("amx", True), ("avx512", True), ("epyc", False)):
        monkeypatch.setattr(tr.Path, "read_text", lambda self, *a, name=name, **k: flags[name]
                            if str(self) == "/proc/cpuinfo" else real(self, *a, **k))
        assert tr.cpu_has_bf16() is want


def test_no_cpuinfo_means_no_bf16(monkeypatch):
    def unreadable(self, *a, **k):
        raise OSError("no /proc here")

    monkeypatch.setattr(tr.Path, "read_text", unreadable)
    assert tr.cpu_has_bf16() is False


CONTEXT = "Duquesne sent about 300 men to relieve Saint-Pierre. The first fort was built at Presque Isle in 1753."


def test_an_opposite_twin_turns_a_word_the_paragraph_lacks_the_opposite_of():
    rng = tr.random.Random(0)
    twins = {tr.swapped("How many men did Duquesne send?", CONTEXT, ["Paris"] * 20, rng, ("opposite",))
             for _ in range(5)}
    assert twins == {"How many women did Duquesne send?"}
    # Where the paragraph has the opposite too, the twin might still be answerable: no twin of that kind.
    both = CONTEXT + " No women went."
    assert tr.swapped("How many men did Duquesne send?", both, ["Paris"] * 20, rng, ("opposite",)) is None


def test_a_negation_twin_negates_a_passive_and_only_where_the_paragraph_has_no_negation():
    rng = tr.random.Random(0)
    assert tr.swapped("Where was the first fort built?", CONTEXT, [], rng, ("negation",)) is None  # no participle
    assert tr.swapped("What was constructed at Presque Isle?", CONTEXT, [], rng, ("negation",)) == \
        "What was not constructed at Presque Isle?"
    assert tr.swapped("What was constructed at Presque Isle?", CONTEXT + " It was not easy.", [], rng,
                      ("negation",)) is None


def test_the_earlier_stages_twins_are_unchanged_by_the_new_kinds():
    # Stages 2 and 3 must draw the same twins as when they were trained, so the default kinds stay the old three.
    for seed in range(20):
        old = tr.swapped("Where was the first fort built in 1753?", CONTEXT, ["Paris", "Rome"] * 10,
                         tr.random.Random(seed))
        assert old == tr.swapped("Where was the first fort built in 1753?", CONTEXT, ["Paris", "Rome"] * 10,
                                 tr.random.Random(seed), ("name", "number", "word"))
        assert old is None or ("last" not in old and " not " not in old)


@tr_slow
def test_the_shipped_int8_reader_rebuilt_in_torch_reads_as_it_does(tmp_path):
    # A later stage trains on from these weights when the torch checkpoint is gone: they must be the same reader.
    import numpy as np
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = tr.from_int8(tr.WEIGHTS, tmp_path / "stage")
    model = AutoModelForQuestionAnswering.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    session = ort.InferenceSession(str(tr.WEIGHTS), providers=["CPUExecutionProvider"])
    for question in ("How many men did Duquesne send?", "When was the first fort built?"):
        enc = tok(question, CONTEXT, return_tensors="pt")
        with torch.no_grad():
            got = model(**enc)
        want = session.run(None, {k: enc[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")})
        assert got.start_logits.argmax().item() == int(want[0][0].argmax())
        assert got.end_logits.argmax().item() == int(want[1][0].argmax())
        assert np.abs(got.start_logits.numpy() - want[0]).max() < 1.0  # int8 activations differ a little
    assert "from_int8" in (out / "train_state.json").read_text(encoding="utf-8")
