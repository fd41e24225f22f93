"""The reader's training script: settings that depend on the machine, the synthetic unanswerable twins, and
training on from int8 weights."""

import math

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
    session = ort.InferenceSession(str(tr.WEIGHTS), providers=["CPUExecutionProvider"])
    head = len(session.get_outputs()) == 3  # a reader with a sentence head (recipe 384)
    model = (tr.sentence_reader_class() if head else AutoModelForQuestionAnswering).from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    for question in ("How many men did Duquesne send?", "When was the first fort built?"):
        enc = {k: v for k, v in tok(question, CONTEXT, return_tensors="pt").items()}
        with torch.no_grad():
            got = model(**enc)
        want = session.run(None, {k: enc[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")})
        assert got["start_logits"].argmax().item() == int(want[0][0].argmax())
        assert got["end_logits"].argmax().item() == int(want[1][0].argmax())
        assert np.abs(got["start_logits"].numpy() - want[0]).max() < 1.0  # int8 activations differ a little
        if head:
            assert np.abs(got["sentence_logits"].numpy() - want[2]).max() < 1.0
    assert "from_int8" in (out / "train_state.json").read_text(encoding="utf-8")


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tr.base_model_path())


def test_the_sentence_head_labels_the_answer_sentence_and_nothing_else():
    tok = _tokenizer()
    answerable = {"question": "When was the first fort built?", "context": CONTEXT,
                  "answer_start": CONTEXT.index("1753"), "answer_text": "1753"}
    unanswerable = {**answerable, "answer_start": -1, "answer_text": ""}
    got, empty = tr.features(tok, [answerable, unanswerable], None, 384, 128, sentence_head=True)
    pieces = tok.convert_ids_to_tokens(got["input_ids"])
    inside = tok.convert_tokens_to_string([p for p, lab in zip(pieces, got["sentence_labels"]) if lab == 1])
    assert inside == "the first fort was built at presque isle in 1753."
    seq = [lab for lab in got["sentence_labels"]]
    assert seq[0] == -100 and got["start_positions"] > 0  # [CLS] and the question are not scored
    assert pieces[got["start_positions"]] == "1753"
    assert set(empty["sentence_labels"]) == {-100, 0} and empty["start_positions"] == 0
    # Without the head the windows carry no sentence labels (the 128 recipe, as the shipped reader was trained).
    assert "sentence_labels" not in tr.features(tok, [answerable], None, 128, 32)[0]


def test_a_long_paragraph_is_one_window_at_384_and_several_at_128():
    tok = _tokenizer()
    context = " ".join([CONTEXT] * 12)  # about 290 pieces
    ex = {"question": "When was the first fort built?", "context": context,
          "answer_start": context.rindex("1753"), "answer_text": "1753"}
    assert len(tr.features(tok, [ex], None, 384, 128, True)) == 1
    assert len(tr.features(tok, [ex], None, 128, 32)) > 2


def test_the_collator_pads_sentence_labels_as_not_scored():
    tok = _tokenizer()
    exs = [{"question": "Who?", "context": c, "answer_start": -1, "answer_text": ""} for c in ("A b.", CONTEXT)]
    feats = tr.features(tok, exs, None, 384, 128, True)
    batch = tr.Collator(tok)(feats)
    short = len(feats[0]["input_ids"])
    assert batch["sentence_labels"].shape == batch["input_ids"].shape
    assert (batch["sentence_labels"][0, short:] == -100).all()


def test_the_384_recipe_draws_every_squad_question_in_each_stage(monkeypatch):
    calls = []
    monkeypatch.setattr(tr, "examples", lambda seed, n, neg, swap=0.0, **kw: calls.append((seed, n, neg, swap, kw))
                        or ([{"id": "x"}], []))
    args = tr.argparse.Namespace(recipe="384", seed=13, squad_questions=22_000, negative_share=0.15)
    tr.stage_data(args, 1)
    tr.stage_data(args, 2)
    assert calls[0][:4] == (13, None, 0.15, 0.0) and calls[1][:4] == (14, None, 0.25, 0.35)
    assert "negation" in calls[1][4]["swap_kinds"] and tr.stage_lr(args, 2) < tr.stage_lr(args, 1)


def test_missing_training_files_name_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(tr, "DATA", tr.DATA)
    with pytest.raises(SystemExit, match="squad1.1-train.json.*--data DIR"):
        tr.use_data(tmp_path)


def test_the_sentence_reader_scores_every_piece_and_learns_from_its_labels():
    import torch

    tok = _tokenizer()
    feats = tr.features(tok, [{"question": "When was the first fort built?", "context": CONTEXT,
                               "answer_start": CONTEXT.index("1753"), "answer_text": "1753"}], None, 384, 128, True)
    batch = tr.Collator(tok)(feats)
    model = tr.sentence_reader_class().from_pretrained(tr.base_model_path())
    out = model(**batch)
    assert out["sentence_logits"].shape == batch["input_ids"].shape and out["loss"] > 0
    span_only = model(**{k: v for k, v in batch.items() if k != "sentence_labels"})["loss"]
    assert out["loss"] > span_only  # the sentence loss is added
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(5):
        loss = model(**batch)["loss"]
        first = first if first is not None else float(loss)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss) < first


def _two_groups() -> list[dict]:
    """A question answered in the second of its two paragraphs, and one with no answer in either."""
    other = "The Rhine flows from the Alps to the North Sea through six countries."
    return [{"question": "When was the first fort built?", "contexts": [other, CONTEXT], "answer_in": 1,
             "answer_start": CONTEXT.index("1753"), "answer_text": "1753"},
            {"question": "Who built the dam?", "contexts": [CONTEXT, other], "answer_in": -1,
             "answer_start": -1, "answer_text": ""}]


def test_a_shared_group_labels_the_answer_in_its_own_window_and_no_answer_at_the_first_cls():
    tok = _tokenizer()
    items = tr.group_features(tok, _two_groups(), 384, 128)
    assert [it["answer_window"] for it in items] == [1, 0] and items[1]["start_positions"] == 0
    batch = tr.GroupCollator()(items)
    n, k, width = batch["input_ids"].shape
    assert (n, k) == (2, 2)
    flat = batch["input_ids"].reshape(n, k * width)
    assert tok.convert_ids_to_tokens(int(flat[0, batch["start_positions"][0]])) == "1753"
    assert batch["start_positions"][1] == 0  # the first window's [CLS]
    # Only the answer's own sentence is labelled, in its own window.
    assert (batch["sentence_labels"][0, 0] == 1).sum() == 0 and (batch["sentence_labels"][0, 1] == 1).sum() > 0
    model = tr.sentence_reader_class().from_pretrained(tr.base_model_path())
    out = model(**batch)
    assert out["start_logits"].shape == (n * k, width) and float(out["loss"]) > 0


def test_a_shared_stage_trains_a_step_through_the_trainer(tmp_path):
    # The Trainer drops the keys forward() does not name unless told not to; stage 3 once died on that.
    tok = _tokenizer()
    items = tr.group_features(tok, _two_groups(), 384, 128)
    args = _args(tmp_path, batch_size=8, max_steps=1, save_steps=100, bf16=False)
    model = tr.sentence_reader_class().from_pretrained(tr.base_model_path())
    trainer = tr.stage_trainer(args, 3, model, tok, items, tmp_path, [])
    assert trainer.args.per_device_train_batch_size == 2  # 8 windows: 2 questions of 4 passages
    # Batches gather questions of like length: each item counts as its longest window, not as its 4 windows.
    assert trainer._get_train_sampler().lengths == [max(map(len, it["input_ids"])) for it in items]
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss) and result.training_loss > 0


def test_a_shared_group_whose_answer_lies_past_its_window_is_left_out():
    tok = _tokenizer()
    long = " ".join(["The weather was mild that year in the valley."] * 80) + " " + CONTEXT
    groups = [{"question": "When was the first fort built?", "contexts": [long, CONTEXT], "answer_in": 0,
               "answer_start": long.rindex("1753"), "answer_text": "1753"}]
    assert tr.group_features(tok, groups, 384, 128) == []


def test_a_sentence_only_example_labels_its_sentences_and_no_span():
    tok = _tokenizer()
    ex = {"question": "Where was the fort built?", "context": CONTEXT, "answer_start": -1, "answer_text": "",
          "sentences": [(CONTEXT.index("The first"), len(CONTEXT))]}
    (feat,) = tr.features(tok, [ex], None, 384, 128, True)
    assert feat["start_positions"] == feat["end_positions"] == -100  # the span loss skips it
    pieces = tok.convert_ids_to_tokens(feat["input_ids"])
    assert tok.convert_tokens_to_string([p for p, lab in zip(pieces, feat["sentence_labels"]) if lab == 1]) == \
        "the first fort was built at presque isle in 1753."
    model = tr.sentence_reader_class().from_pretrained(tr.base_model_path())
    loss = model(**tr.Collator(tok)([feat]))["loss"]
    assert math.isfinite(float(loss)) and float(loss) > 0  # a batch with no span at all still learns


def test_selqa_dev_is_split_by_article_between_the_head_and_the_confidence_fit():
    articles = [f"Article {i}" for i in range(200)]
    trained = [a for a in articles if tr.selqa_for_training(a)]
    assert 60 < len(trained) < 140 and tr.selqa_for_training(trained[0])  # about half, the same every time


def _args(tmp_path, **kw):
    base = dict(recipe="384", seed=13, batch_size=32, epochs=1.0, max_steps=-1, lr=1e-4, squad_questions=22_000,
                negative_share=0.15, work_dir=str(tmp_path))
    return tr.argparse.Namespace(**{**base, **kw})


def test_a_stage_folder_refuses_checkpoints_made_under_other_settings(tmp_path):
    tr.check_settings(tmp_path, tr.stage_settings(_args(tmp_path), 1))
    tr.check_settings(tmp_path, tr.stage_settings(_args(tmp_path), 1))  # the same settings resume
    with pytest.raises(SystemExit, match=r"other settings \(batch_size.*Move that folder away"):
        tr.check_settings(tmp_path, tr.stage_settings(_args(tmp_path, batch_size=16), 1))
    assert "shipped" not in tr.stage_settings(_args(tmp_path), 1)  # which stage ships is no training setting
    settings = tr.stage_settings(_args(tmp_path), 2)
    assert settings["swap_kinds"][-1] == "negation" and settings["attention_dropout"] == 0.0


def test_a_stage_clock_counts_the_seconds_of_earlier_runs(tmp_path):
    earlier = tmp_path / "checkpoint-200"
    earlier.mkdir()
    (earlier / "elapsed.json").write_text('{"seconds": 1000}', encoding="utf-8")
    clock = tr.stage_clock(str(earlier))
    assert clock.before == 1000 and clock.seconds() >= 1000
    (tmp_path / "checkpoint-400").mkdir()
    clock.on_save(tr.argparse.Namespace(output_dir=str(tmp_path)), tr.argparse.Namespace(global_step=400), None)
    assert tr.json.loads((tmp_path / "checkpoint-400" / "elapsed.json").read_text())["seconds"] >= 1000
    assert tr.stage_clock(None).before == 0


def test_the_384_recipe_trains_without_attention_dropout_and_the_128_one_as_before(tmp_path):
    # Attention dropout keeps torch's CPU attention off its fused kernel: 12.1 s against 2.7 s a 32 x 384 step.
    assert tr.stage_model(_args(tmp_path), 1).config.attention_probs_dropout_prob == 0.0
    assert tr.stage_model(_args(tmp_path, recipe="128"), 1).config.attention_probs_dropout_prob == 0.1


def test_training_runs_on_the_cpu_unless_a_gpu_is_asked_for_and_seen(tmp_path, capsys):
    tok = _tokenizer()
    items = tr.group_features(tok, _two_groups(), 384, 128)
    model = tr.sentence_reader_class().from_pretrained(tr.base_model_path())
    args = _args(tmp_path, batch_size=8, max_steps=1, save_steps=100, bf16=False)
    assert tr.stage_trainer(args, 3, model, tok, items, tmp_path, []).args.use_cpu  # no device named: the CPU
    assert tr.device_name(args) == "cpu"
    gpu = _args(tmp_path, batch_size=8, max_steps=1, save_steps=100, bf16=False, device="gpu")
    assert not tr.stage_trainer(gpu, 3, model, tok, items, tmp_path, []).args.use_cpu
    import torch

    if not torch.cuda.is_available():  # this project's machines: a clear refusal, before any data is read
        with pytest.raises(SystemExit) as e:
            tr.main(["--device", "gpu", "--work-dir", str(tmp_path)])
        assert e.value.code == 2 and "torch sees no GPU" in capsys.readouterr().err
