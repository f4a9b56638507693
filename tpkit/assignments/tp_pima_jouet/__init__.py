"""« Pima et données jouets », the course's second assignment: the main TP's recipe on the Pima
diabetes table (standardised features), then a 2-D toy set and its decision regions."""
from tpkit.assignments import Assignment, Number

_LOSS = "{:.3f}"

ASSIGNMENT = Assignment(
    name="tp_pima_jouet",
    order=2,
    package=__name__,
    aliases=("pima_jouet", "pima"),
    checks=f"{__name__}.checks",
    reference=f"{__name__}.reference",
    thresholds=f"{__name__}.thresholds",
    calibration=f"{__name__}.calibration",
    reexec=f"{__name__}.reexec",
    probes=f"{__name__}.probes",
    mistakes=f"{__name__}.mistakes",
    variants=f"{__name__}.variants",
    experiment_cells=(),
    seeded_cells=("setup", "r2_pima_lineaire", "comparaison_sgd", "r3_pima", "r4_jouet"),
    typical=("standardisation_test_propres_stats", "pred_softmax_axe0", "sgd_sans_zero_grad"),
    catalogue_doc="docs/catalogue-pima-jouet.md",
    catalogue_test="tests/test_pima_jouet.py",
    thresholds_doc="docs/thresholds-pima-jouet.md",
    # mistakes whose visible check stays silent on purpose, and why (tpkit.catalogue.visibility)
    hidden_reasons={
    "minibatch_indices_differents": "X and Y indexed by two different draws: only a replay of the loop "
                                    "(the answer of Q3.3) tells it from a right one; the hidden check replays it",
    "regions_deux_figures": "the inline backend closes each figure after its cell: a visible check cannot "
                            "count the panels (the hidden check reads the figures recorded while grading)",
    },
    prerequisites={
        "j1_standardisation": ("j1_chargement",), "j1_onehot": ("j1_standardisation",),
        "j2_pred": ("j1_onehot",), "j2_cout": ("j2_pred",), "j2_initialisation": ("j1_chargement",),
        "j2_descente": ("j2_pred", "j2_cout", "j2_initialisation"), "j2_pima_lineaire": ("j2_descente",),
        "j2_sgd": ("j2_pred", "j2_cout", "j2_initialisation"), "j3_mlp": ("j1_onehot",),
        "j3_apprendre": ("j3_mlp", "j2_cout"), "j3_minibatch": ("j3_mlp", "j2_cout"),
        "j3_pima": ("j3_apprendre", "j3_minibatch"), "j4_donnees": ("j1_onehot",),
        "j4_jouet": ("j4_donnees", "j2_sgd", "j3_apprendre"), "j4_regions": ("j4_jouet",),
    },
    model_answers=(
        Number("majorite", "j1_onehot", "float(np.mean(yt == 0))", fmt="{:.3f}"),
        Number("taux_test", "j2_pima_lineaire", "float(taux_test)", fmt="{:.3f}"),
        Number("taux_test_mlp", "j3_pima", "float(taux_test_mlp)", fmt="{:.3f}"),
        Number("taux_test_mb", "j3_pima", "float(taux_test_mb)", fmt="{:.3f}"),
        Number("cout_lineaire_fin", "j2_pima_lineaire", "lst_loss[-1]", fmt=_LOSS),
        Number("cout_mlp_fin", "j3_pima", "lst_loss_mlp[-1]", fmt=_LOSS),
        Number("taux_test_lin_j", "j4_jouet", "float(taux_test_lin_j)", fmt="%"),
        Number("taux_test_mlp_j", "j4_jouet", "float(taux_test_mlp_j)", fmt="%"),
    ),
)
