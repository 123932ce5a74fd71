"""Property tests for `lingua_nb.align` on generated inputs (no tokenizer downloads): the
full-matrix DP equals the
plain recurrence, every DP and offset path covers both sides monotonically, batches equal single
calls, identical
tokenizations give the identity, and the projection keeps the teacher's probabilities as given."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lingua_nb.align import (
    Tokenized,
    dp_align,
    dp_align_batch,
    normalize_tokens,
    offset_align,
    offset_align_batch,
    project_topk,
    reference_dtw,
)

FAST = settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
token = st.text(alphabet="ab1 .é한😀\n", min_size=0, max_size=4)
tokens = st.lists(token, min_size=1, max_size=25)


def covers(al, n, m):
    al.check()
    return set(al.links[:, 0].tolist()) == set(range(n)) and set(al.links[:, 1].tolist()) == set(
        range(m)
    )


@FAST
@given(tokens, tokens)
def test_full_matrix_is_the_plain_recurrence(s, t):
    al = dp_align(s, t, "plain", "plain", band=None)
    links, cost = reference_dtw(normalize_tokens(s, "plain"), normalize_tokens(t, "plain"))
    assert al.links.tolist() == [list(x) for x in links] and al.cost == cost


@FAST
@given(tokens, tokens, st.integers(0, 8))
def test_banded_paths_cover_both_sides(s, t, band):
    al = dp_align(s, t, "plain", "plain", band=band)
    assert covers(al, len(s), len(t))
    assert al.cost >= dp_align(s, t, "plain", "plain", band=None).cost


@FAST
@given(st.lists(st.tuples(tokens, tokens), min_size=1, max_size=6))
def test_batch_equals_single_calls(pairs):
    batch = dp_align_batch([p[0] for p in pairs], [p[1] for p in pairs], "plain", "plain")
    assert batch == [dp_align(s, t, "plain", "plain") for s, t in pairs]


@FAST
@given(tokens)
def test_identical_tokenizations_give_the_identity(s):
    assert dp_align(s, s, "plain", "plain").links.tolist() == [[k, k] for k in range(len(s))]


@st.composite
def tokenized_text(draw):
    """A text and two tokenizations of it; either may drop whitespace-only tokens, as SentencePiece
    drops newlines."""
    text = draw(st.text(alphabet="ab \n.한😀", min_size=1, max_size=40))
    sides = []
    for _ in range(2):
        cuts = sorted(
            draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=len(text))) - {len(text)}
        )
        bounds = [0, *cuts, len(text)]
        spans = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if a < b]
        drop = draw(st.booleans())
        spans = [(a, b) for a, b in spans if not (drop and text[a:b].isspace())] or spans[:1]
        sides.append(
            Tokenized(
                [text[a:b] for a, b in spans],
                np.array(spans, dtype=np.int64).reshape(-1, 2),
                "plain",
            )
        )
    return text, sides[0], sides[1]


@FAST
@given(tokenized_text())
def test_offset_paths_are_alignments(case):
    text, a, b = case
    al = offset_align(text, a, b)
    assert covers(al, len(a.tokens), len(b.tokens))
    assert offset_align(text, a, a).links.tolist() == [[k, k] for k in range(len(a.tokens))]
    assert offset_align_batch([text, text], [a, b], [b, a])[0] == al


@FAST
@given(tokenized_text())
def test_offset_links_join_tokens_sharing_a_character(case):
    "Two tokens covering one non-space character of the text are always linked."
    text, a, b = case
    M = offset_align(text, a, b).to_matrix()
    for i, (s0, e0) in enumerate(a.offsets.tolist()):
        for j, (s1, e1) in enumerate(b.offsets.tolist()):
            if any(not text[c].isspace() for c in range(max(s0, s1), min(e0, e1))): assert M[i, j]


@FAST
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_projection_keeps_probabilities_as_given(p):
    total = sum(p)
    # a top-k row is part of a distribution: it sums to <= 1
    if total > 1:
        p = [x / total / (1 + 1e-9) for x in p]
    al = dp_align(["a", "b"], ["a", "b"], "plain", "plain")
    vocab = {"a": 0, "b": 1, "c": 2}
    tg = project_topk(
        al,
        [["a", "c", "x"], ["b", "a", "c"]],
        [p, p],
        [0, 1],
        vocab,
        teacher_scheme="plain",
        student_scheme="plain",
    )
    assert tg.from_teacher.tolist() == [True, True]
    # "x" is not a student token: dropped
    np.testing.assert_allclose(tg.probs[0, :2], np.float32(p[:2]))
    np.testing.assert_allclose(tg.probs[1], np.float32(p))


@FAST
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3).filter(lambda p: sum(p) > 1.01))
def test_projection_rejects_rows_above_one(p):
    al = dp_align(["a", "b"], ["a", "b"], "plain", "plain")
    with pytest.raises(ValueError, match="topk_probs rows must sum to at most 1"):
        project_topk(
            al,
            [["a", "c", "x"], ["b", "a", "c"]],
            [p, p],
            [0, 1],
            {"a": 0, "b": 1, "c": 2},
            teacher_scheme="plain",
            student_scheme="plain",
        )
