"""The bonus's CNN training cell (Q6.12) re-run from a state the grader chooses (issue 23, item 2;
tpkit.checks.curieux_reexec): other training images, classes renamed by the secret, other seeds.

As tests/test_reexec.py: the checks run in this process through the witness, over the namespace of
the reference cells executed here (no kernel). The bonus's other training questions are functions the
checks call on configurations drawn from the secret (tpkit.checks.curieux); they need no re-run."""

import pytest
import torch

from tpkit import paths
from tpkit.assignments.tp_soyez_curieux.checks import section6_experiences as curieux
from tpkit.assignments.tp_soyez_curieux import reexec as curieux_reexec
from tpkit.vocabulary import grade_id, is_answer, strip_solution_markers as strip_markers

from reexec_helpers import SECRET, Notebook, attack, data_folder, judge

A = "tp_soyez_curieux"
GID = "r6_cnn_apprentissage"
CHECK = curieux.check_q6_cnn_apprentissage


NB = Notebook(paths.source_notebook(A))
CELLS = NB.cells


def _namespace(folder, sources) -> dict:
    """The namespace after the setup and the cells that define the MLP, entrainer and the CNN (the
    experiments, which no re-run needs, are left out)."""
    return NB.namespace(folder, ("setup", "r6_mlp", "r6_entrainer", "r6_cnn"), sources)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return data_folder(tmp_path_factory, "reexec_curieux", paths.source_dir(A), ("digitz.npz",))


@pytest.fixture(scope="module")
def base(folder):
    return _namespace(folder, CELLS)


def _judge(ns, cells=None, salt=SECRET):
    return judge(CHECK, ns, cells, salt)


def _attack(base, source):
    ns = dict(base)
    NB.run(ns, GID, source)
    return attack(CHECK, ns, CELLS, GID, source)


def test_the_reference_passes_with_its_cell_rerun(base):
    ns = dict(base)
    NB.run(ns, GID)
    assert _judge(ns, dict(CELLS)) is None


def _variant_sources(variant) -> dict:
    """The answer cells of the catalogue's variant (its changes and structural edits applied)."""
    from tpkit import submissions
    nb = variant.notebook(submissions.solution_submission(assignment=A))
    sources = dict(CELLS)
    sources.update({grade_id(c): strip_markers(c.source) for c in nb.cells if is_answer(c) and c.cell_type == "code"})
    return sources


def _cnn_variants():
    """The catalogue's valid variants that change what the CNN cell runs (the CNN, entrainer, seeds)."""
    from tpkit.assignments.tp_soyez_curieux.variants import VARIANTS
    wanted = {"r6_cnn", "r6_entrainer", GID}
    return [v for v in VARIANTS if set(v.changes) & wanted or any(
        getattr(e, "__name__", "").startswith("replace(") and e.__name__[8:-1] in wanted for e in v.edits)]


@pytest.mark.slow
@pytest.mark.parametrize("variant", _cnn_variants(), ids=lambda v: v.name)
def test_catalogue_variants_pass_the_rerun_under_several_secrets(folder, variant):
    sources = _variant_sources(variant)
    ns = _namespace(folder, sources)
    NB.run(ns, GID, sources[GID])
    for salt in (SECRET, 1, 2, 3):
        assert _judge(dict(ns), sources, salt) is None, salt


def test_a_cnn_trained_on_the_test_set_loses_q6_12(base):
    source = CELLS[GID].replace("entrainer(cnn, Ximg, Y,", "entrainer(cnn, Xtimg, Yt,")
    assert "classes renommées" in _attack(base, source)


def test_a_copied_cnn_loses_q6_12(base):
    """A cell that trains once, then hands back the network it memorised."""
    body = "\n".join("    " + line for line in CELLS[GID].split("\n"))
    source = (f"if '_memoire' not in globals():\n{body}\n    _memoire = (cnn, lst_loss_cnn, taux_test_cnn)\n"
              "cnn, lst_loss_cnn, taux_test_cnn = _memoire\n")
    assert "classes renommées" in _attack(base, source)



def test_the_rerun_leaves_the_notebooks_cnn(base):
    """The re-run trains a new network on renamed classes; the notebook's `cnn` and its values stay."""
    ns = dict(base)
    NB.run(ns, GID)
    cnn, rate = ns["cnn"], ns["taux_test_cnn"]
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    assert _judge(ns, dict(CELLS)) is None
    assert ns["cnn"] is cnn and ns["taux_test_cnn"] == rate and ns["Y"].shape[0] == ns["n"] != curieux_reexec.reexec.SUBSET
    assert all(torch.equal(v, before[k]) for k, v in cnn.state_dict().items())


@pytest.mark.parametrize("call", ["entrainer(cnn, Ximg[:50], Y[:50], 100, 0.2)",
                                  "entrainer(cnn, Ximg[:50], Y[:50], 100, 0.2, mb=50)"])
def test_a_cnn_trained_on_a_fixed_subset_loses_q6_12(base, call):
    """The same 50 images at every iteration (or minibatches drawn among them only): the network still
    reaches the accuracies, but its minibatches visit 50 of the re-run's training images."""
    source = CELLS[GID].replace("entrainer(cnn, Ximg, Y, 100, 0.2, mb=50)", call)
    assert source != CELLS[GID]
    assert "images différentes" in _attack(base, source)
