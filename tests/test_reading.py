"""How the trained reader cuts a text into windows and where it scores each span (no model needed)."""

from types import SimpleNamespace

import pytest

from qa.reading import MAX_OVERLAP, OnnxReader, _home_windows


def _window(first: int, pieces: int, question: int = 3):
    """A window holding text pieces first..first+pieces-1 (each piece starts at 10 * its number), as the
    tokenizer lays one out: [CLS] question [SEP] text [SEP]."""
    seq = [None] + [0] * question + [None] + [1] * pieces + [None]
    offsets = [(0, 0)] * (question + 2) + [(10 * p, 10 * p + 5) for p in range(first, first + pieces)] + [(0, 0)]
    return SimpleNamespace(sequence_ids=seq, offsets=offsets)


def test_a_piece_is_scored_in_the_window_where_it_has_the_most_context():
    # Two texts; the first read in windows of pieces 0-9 and 5-14 (overlap 5), the second in one window.
    windows = [(0, _window(0, 10)), (0, _window(5, 10)), (1, _window(0, 4))]
    home = _home_windows(windows)
    assert home[0, 0] == 0 and home[0, 140] == 1  # the ends of the text have one window each
    assert home[0, 60] == 0  # piece 6: 3 pieces to the end of window 0, only 1 from the start of window 1
    assert home[0, 90] == 1  # piece 9: last in window 0, 4 pieces in and 5 from the end of window 1
    assert {w for (t, _), w in home.items() if t == 1} == {2}  # each text only ever looks at its own windows
    assert len([k for k in home if k[0] == 0]) == 15  # every piece of the text has exactly one home


@pytest.mark.parametrize("overlap", [-1, MAX_OVERLAP + 1, 128])
def test_an_overlap_the_windows_cannot_hold_is_refused_with_what_to_set(overlap):
    with pytest.raises(ValueError, match="QA_READER_OVERLAP"):
        OnnxReader("reader.int8.onnx", overlap=overlap)


def test_the_longest_question_still_leaves_room_for_the_largest_overlap():
    from qa.reading import MAX_LENGTH, MAX_QUESTION_TOKENS

    assert 0 < MAX_OVERLAP < MAX_LENGTH - 3 - MAX_QUESTION_TOKENS  # the tokenizer panics at overlap >= room
    assert OnnxReader("reader.int8.onnx", overlap=MAX_OVERLAP).overlap == MAX_OVERLAP


def test_an_unknown_batch_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="all, text, window"):
        OnnxReader("reader.int8.onnx", batch="passage")


def test_the_window_follows_the_readers_card(tmp_path):
    import json

    weights = tmp_path / "reader.int8.onnx"
    (tmp_path / "reader.json").write_text(json.dumps({"training": {"max_length": 384, "stride": 128}}))
    wide = OnnxReader(weights, overlap=128)
    assert wide.max_length == 384
    with pytest.raises(ValueError, match="0 to 332"):
        OnnxReader(weights, overlap=333)
    assert OnnxReader(tmp_path / "other.onnx").max_length == 128  # no card: the shipped reader's window
    assert wide.scoring == OnnxReader(tmp_path / "other.onnx").scoring == "window"


def test_a_reader_trained_with_shared_normalisation_reads_on_one_scale(tmp_path):
    import json

    weights = tmp_path / "reader.int8.onnx"
    (tmp_path / "reader.json").write_text(json.dumps({"training": {"max_length": 384, "scoring": "shared"}}))
    assert OnnxReader(weights).scoring == "shared" and OnnxReader(weights, scoring="window").scoring == "window"
    with pytest.raises(ValueError, match="'window' or 'shared'"):
        OnnxReader(weights, scoring="softmax")
