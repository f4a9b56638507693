"""« Réseaux de neurones avec PyTorch », the course's main assignment (sections 1 to 5 of the
statement): digits 1, 7, 8 of MNIST, softmax regression by gradient descent, then a two-layer network
by hand and with torch.nn, then minibatches."""
from tpkit.assignments import Assignment, Number

_LOSS = "{:.3f}"

ASSIGNMENT = Assignment(
    name="tp_reseaux_neurones",
    order=1,
    package=__name__,
    aliases=("reseaux",),
    checks="tpkit.assignments.tp_reseaux_neurones.checks",
    reference=f"{__name__}.reference",
    thresholds=f"{__name__}.thresholds",
    calibration="tpkit.assignments.tp_reseaux_neurones.calibration",
    reexec=f"{__name__}.reexec",
    probes=f"{__name__}.probes",
    mistakes=f"{__name__}.mistakes",
    variants=f"{__name__}.variants",
    experiment_cells=("r3_experiences", "r3_quadratique", "r4_experiences"),
    seeded_cells=("setup", "r3_descente", "r3_sgd", "r4_mlp_manuel", "r4_mlp_apprentissage", "r5_minibatch"),
    # the nine examples of tpkit.examples (grading robustness): the grade ids each one changes
    example_edits={
        "partial_sections": ("r1_", "r2_", "m2_"),       # answer cells completed in "partiel"
        "mistakes": {
            "r2_pred": [("dim=1", "dim=0")],  # softmax over the wrong axis
            "r2_cout": [("return -th.mean(", "return th.mean(")],  # cost without its minus sign
            "r3_sgd": [("\n    optimiseur.zero_grad()", "")],  # gradients never zeroed
        },
        "infinite_loop": {"r3_precision": [("taux_app = ", "while True:\n    pass\ntaux_app = ")]},
        "duplicated": "r2_pred",
        "deleted": "q2_cout",
    },
    catalogue_doc="docs/catalogue.md",
    catalogue_test="tests/test_catalogue.py",
    generalisation=f"{__name__}.generalisation",
    thresholds_doc="docs/thresholds.md",
    # its exports stay in exports/ itself (the paths instructors and the README know: exports/grades.csv)
    exports_in_root=True,
    prewarm=f"{__name__}.checks.section3_descent:prewarm",
    # mistakes whose visible check stays silent on purpose, and why (tpkit.catalogue.visibility)
    hidden_reasons={

    "chargement_x_xt_inverses": "a visible check would have to name which array is the test set "
                                "(the shapes alone are valid); the hidden check compares with the file",
    "chargement_pixels_divises_par_255": "checking the pixel range would give the values away; "
                                         "the hidden check compares with the file",
    "etiquettes_mauvais_ordre": "the visible check would state the mapping of each image, i.e. the answer",
    "onehot_colonnes_inversees": "a visible check would need the answer (column of each class)",
    "onehot_test_depuis_y": "a visible check would need the answer (Yt rebuilt from yt)",
    "softmax_naive_a_la_main": "stability shows only on extreme inputs the checks feed privately",
    "backward_appele_deux_fois": "a visible check would print the analytic gradient (the answer of Q2.7)",
    "cout_1e-16_hors_du_log": "same value as the right cost on every real Ŷ: only a 0 in Ŷ shows it",
    "cout_sans_1e-16": "same value as the right cost on every real Ŷ: only a 0 in Ŷ shows it",
    "pred2_biais_apres_relu": "the visible check would spell out the formula with its own weights",
    "mlp_forward_sans_relu": "a visible check would spell out forward's formula (the answer of Q4.8); "
                             "the training checks below it fail visibly",
    "stub_courbe": "the inline backend closes each figure after its cell: a visible check cannot see the "
                   "plot (the hidden check reads the figures recorded while grading)",
    "courbe_partielle": "the inline backend closes each figure after its cell: a visible check cannot see "
                        "the plot (the hidden check reads the figures recorded while grading)",
    },
    prerequisites={
        "q1_etiquettes": ("q1_chargement",), "q1_dimensions": ("q1_chargement",),
        "q1_onehot": ("q1_etiquettes", "q1_dimensions"), "q1_tenseurs": ("q1_onehot",),
        "q2_W": ("q1_dimensions",), "q2_B": ("q1_dimensions",),
        "q2_pred": ("q1_tenseurs", "q2_W", "q2_B"), "q2_cout": ("q2_pred",), "q2_gradient": ("q2_cout",),
        "q3_descente": ("q2_pred", "q2_cout"), "q3_courbe": ("q3_descente",),
        "q3_precision": ("q3_descente",), "q3_sgd": ("q3_descente",),
        "q4_mlp_manuel": ("q4_pred2", "q2_cout"), "q4_mlp_identite": ("q1_tenseurs",),
        "q4_mlp_classe": ("q1_tenseurs",), "q4_mlp_apprentissage": ("q4_mlp_classe", "q2_cout"),
        "q5_minibatch": ("q4_mlp_classe", "q2_cout"),
    },
    model_answers=(
        Number("yhat_min", "r2_lignes", "Yhat.min().item()", fmt="{:.2f}"),
        Number("yhat_max", "r2_lignes", "Yhat.max().item()", fmt="{:.2f}"),
        Number("cout_debut", "q3_descente", "lst_loss[0]", fmt=_LOSS),
        Number("cout_fin", "q3_descente", "lst_loss[-1]", fmt=_LOSS),
        Number("cout_iteration_150", "q3_descente", "lst_loss[149]", fmt=_LOSS),
        Number("exp_grand_pas_hausses", "r3_experiences", "sum(b > a for a, b in zip(lst_loss_exp, lst_loss_exp[1:]))",
               fmt="{:d}"),
        Number("exp_grand_pas_fin", "r3_experiences", "lst_loss_exp[-1]", fmt=_LOSS),
        Number("taux_test", "q3_precision", "float(taux_test)"),
        Number("taux_quadratique", "r3_quadratique", printed=r"coût quadratique, taux en test : ([\d.]+)"),
        Number("taux_test2", "q4_mlp_manuel", "float(taux_test2)"),
        Number("taux_5_neurones", "r4_experiences", printed=r"(?m)^5 neurones cachés, taux en test : ([\d.]+)"),
        Number("taux_30_neurones", "r4_experiences", printed=r"(?m)^30 neurones cachés, taux en test : ([\d.]+)"),
        Number("taux_test_mlp", "q4_mlp_apprentissage", "float(taux_test_mlp)"),
        Number("mb_cout_debut", "q5_minibatch", "float(np.mean(lst_loss_mb[:100]))", fmt=_LOSS),
        Number("mb_cout_fin", "q5_minibatch", "float(np.mean(lst_loss_mb[-100:]))", fmt=_LOSS),
        Number("mb_part_hausses", "q5_minibatch",
               "sum(b > a for a, b in zip(lst_loss_mb, lst_loss_mb[1:])) / (len(lst_loss_mb) - 1)", fmt="%"),
        Number("niter_mb", "q5_minibatch", "niter_mb", fmt="{:d}"),
        Number("taux_test_mb", "q5_minibatch", "float(taux_test_mb)"),
        Number("n", "q1_dimensions", "n", fmt="{:d}"),
        Number("n_sur_mb", "q5_minibatch", "n / mb", fmt="{:.0f}"),
        Number("passages_mb", "q5_minibatch", "niter_mb * mb / n", fmt="{:.0f}"),
    ),
)
