"""tpkit.grading.similarity on crafted notebooks: reading a submission against the release's skeleton,
the normalised tokens, the k-grams tagged by cell, the thresholds. That renamed variables and comments
do not hide a copy, and that two blank notebooks are not a pair, is in tests/grading/test_classreport.py
(with the class report's view of a pair)."""
import nbformat

from tpkit.grading import similarity

v4 = nbformat.v4
SKELETON_Q = "def pred(X, W, B):\n    # VOTRE CODE ICI\n    raise NotImplementedError()"
BODY = ("    logits = X @ W + B\n    e = torch.exp(logits - logits.max(1, keepdim=True)[0])\n"
        "    total = e.sum(1, keepdim=True)\n    return e / total\n")


def answer(source, gid):
    return v4.new_code_cell(source, metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": gid}})


def write(path, *cells):
    nbformat.write(v4.new_notebook(cells=list(cells)), str(path))
    return path


def test_release_skeleton_gives_answer_cells_and_the_statement_s_names(tmp_path):
    release = write(tmp_path / "release.ipynb",
                    v4.new_code_cell("import torch\nn, d = 1050, 64"),
                    answer(SKELETON_Q, "q2_pred"),
                    v4.new_code_cell("def cassé(:\n  pass"),  # a cell that does not tokenize is skipped
                    v4.new_markdown_cell("variable_du_texte"),
                    v4.new_code_cell("print('non-réponse')", metadata={"nbgrader": {"solution": False,
                                                                                      "grade_id": "x"}}))
    skeleton, names = similarity.release_skeleton(release)
    assert skeleton == {"q2_pred": SKELETON_Q}
    assert {"torch", "n", "d", "pred", "X", "W", "B", "NotImplementedError", "print"} <= names
    assert "variable_du_texte" not in names


def test_load_removes_the_skeleton_and_normalises_the_student_s_names(tmp_path):
    kept = frozenset({"pred", "X", "W", "B", "torch"})
    nb = write(tmp_path / "alice.ipynb", answer(SKELETON_Q.replace("    raise NotImplementedError()", BODY),
                                                "q2_pred"),
               v4.new_code_cell("ignored = 1"))  # not an answer cell
    sub = similarity.load("alice", nb, {"q2_pred": SKELETON_Q}, kept)
    assert sub.student == "alice" and list(sub.cells) == ["q2_pred"]
    tokens = sub.tokens["q2_pred"]
    assert "def" not in tokens and "raise" not in tokens  # the skeleton's lines are gone
    assert tokens[:7] == ["_", "=", "X", "@", "W", "+", "B"]  # logits -> _, statement names kept
    assert "max" in tokens and "exp" in tokens  # attributes kept
    assert "keepdim" not in tokens and "logits" not in tokens  # keyword arguments and the student's names
    assert "#" not in "".join(tokens)
    assert sub.size == len(tokens)


def test_strings_are_one_token_and_a_cell_that_does_not_tokenize_is_split_on_spaces():
    assert similarity._tokens("msg = 'bonjour'\nf(\"au revoir\")", frozenset({"f"})) == \
        ["_", "=", "S", "f", "(", "S", ")"]
    assert similarity._tokens("x = (1,\n", frozenset()) == ["x", "=", "(1,"]


def test_an_unreadable_notebook_is_not_a_submission(tmp_path):
    bad = tmp_path / "bob.ipynb"
    bad.write_text("{ pas du json")
    assert similarity.load("bob", bad, {}, frozenset()) is None
    assert similarity.load("carol", tmp_path / "absent.ipynb", {}, frozenset()) is None


def sub(student, tokens_by_cell):
    return similarity.Submission(student, {}, tokens_by_cell)


def test_the_same_code_in_another_question_is_not_a_common_k_gram():
    tokens = [f"t{i}" for i in range(80)]
    assert similarity.shingles(sub("a", {"q1": tokens})).isdisjoint(similarity.shingles(sub("b", {"q2": tokens})))
    assert similarity.shingles(sub("a", {"q1": tokens})) == similarity.shingles(sub("b", {"q1": tokens}))
    assert len(similarity.shingles(sub("a", {"q1": ["a", "b"]}))) == 1  # shorter than k: one gram
    assert similarity.shingles(sub("a", {"q1": []})) == set()


def test_pairs_are_listed_from_the_threshold_most_similar_first_with_their_cells():
    base = [f"t{i}" for i in range(100)]
    near = base[:95] + ["autre"] * 5  # the last k-grams differ
    far = [f"u{i}" for i in range(100)]
    subs = [sub("a", {"q1": base, "q2": base[:20]}), sub("b", {"q1": base, "q2": base[:20]}),
            sub("c", {"q1": near, "q2": base[:20]}), sub("d", {"q1": far}), sub("petit", {"q1": base[:10]})]
    pairs = similarity.similar_pairs(subs, threshold=0.8, min_tokens=60)
    assert [(p.a, p.b) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert pairs[0].score == 1.0 and 0.8 <= pairs[1].score < 1.0 and pairs[1].score == pairs[2].score
    assert pairs[1].cells == [("q2", 1.0), ("q1", pairs[1].cells[1][1])] and pairs[1].cells[1][1] < 1.0
    assert similarity.similar_pairs(subs, threshold=0.99, min_tokens=60) == [pairs[0]]
    assert similarity.similar_pairs(subs, min_tokens=200) == []  # below the size, never compared
