"""« Soyez curieux », the statement's bonus section 6: experiments on the main TP's data (width,
depth, activations, minibatch size) and a small convolutional network."""
from tpkit.assignments import Assignment, Number

_LOSS = "{:.3f}"

ASSIGNMENT = Assignment(
    name="tp_soyez_curieux",
    order=3,
    package=__name__,
    aliases=("curieux",),
    checks=f"{__name__}.checks",
    reference=f"{__name__}.reference",
    thresholds=f"{__name__}.thresholds",
    calibration=f"{__name__}.calibration",
    reexec=f"{__name__}.reexec",
    probes=f"{__name__}.probes",
    mistakes=f"{__name__}.mistakes",
    variants=f"{__name__}.variants",
    experiment_cells=(),
    seeded_cells=("setup", "r6_neurones", "r6_couches", "r6_activations", "r6_minibatch", "r6_cnn_apprentissage"),
    typical=("entrainer_sans_zero_grad", "activations_argument_oublie", "cnn_sans_pooling"),
    catalogue_doc="docs/catalogue-curieux.md",
    catalogue_test="tests/test_curieux.py",
    thresholds_doc="docs/thresholds.md",
    prerequisites={
        "q6_neurones": ("q6_mlp", "q6_entrainer"), "q6_couches": ("q6_mlp", "q6_entrainer"),
        "q6_activations": ("q6_mlp", "q6_entrainer"), "q6_minibatch": ("q6_mlp", "q6_entrainer"),
        "q6_cnn_apprentissage": ("q6_cnn", "q6_entrainer"),
    },
    model_answers=(
        *[Number(f"taux_{k}_neurones", "q6_neurones", f"float(taux_neurones[{i}])", fmt="%")
          for i, k in enumerate((2, 5, 20, 100))],
        *[Number(f"taux_{k}_couches", "q6_couches", f"float(taux_couches[{i}])", fmt="%")
          for i, k in enumerate((1, 2, 3, 5))],
        *[Number(f"cout_fin_{a}", "q6_activations", f"couts_activations[{i}][-1]", fmt=_LOSS)
          for i, a in enumerate(("relu", "tanh", "sigmoid"))],
        Number("taux_test_cnn", "q6_cnn_apprentissage", "float(taux_test_cnn)", fmt="%"),
        Number("taux_test_mlp_comparaison", "q6_cnn_apprentissage", "float(precision(mlp_comparaison, Xt, yt))",
               fmt="%"),
        Number("parametres_cnn", "q6_cnn_apprentissage", "sum(t.numel() for t in cnn.parameters())", fmt="{:d}"),
        Number("parametres_mlp", "q6_cnn_apprentissage", "sum(t.numel() for t in mlp_comparaison.parameters())",
               fmt="{:d}"),
    ),
)
