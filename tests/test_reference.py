"""The checks' reference computations (tpkit/checks/reference.py)."""
import subprocess
import sys

import torch

from tpkit.assignments.tp_reseaux_neurones import reference as ref


def _mlp(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True),
            torch.zeros(1, 4, dtype=torch.float64, requires_grad=True),
            torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True),
            torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)]


def test_sgd_step_is_torch_optim_sgd_to_the_bit():
    X = torch.randn(20, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    Y = torch.eye(3, dtype=torch.float64)[torch.arange(20) % 3]
    mine, theirs = _mlp(0), _mlp(0)
    opt = torch.optim.SGD(theirs, lr=0.7)
    for _ in range(25):
        for params, step in ((mine, lambda: ref.sgd_step(mine, 0.7)), (theirs, lambda: (opt.step(), opt.zero_grad()))):
            ref.cout(Y, ref.pred2(X, *params)).backward()
            step()
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
    assert all(p.grad is None for p in mine)


def test_grading_a_training_never_imports_torch_dynamo():
    # torch.optim's first step imports torch._dynamo: 1.3 s of CPU in every grading worker
    code = ("import sys, torch\n"
            "from tpkit.checks import reference as ref\n"
            "X = torch.randn(10, 5, dtype=torch.float64); Y = torch.eye(3, dtype=torch.float64)[torch.arange(10) % 3]\n"
            "W = torch.zeros(5, 3, dtype=torch.float64, requires_grad=True)\n"
            "B = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)\n"
            "losses = ref.train([W, B], lambda x: ref.pred(x, W, B), X, Y, niter=5, step=0.5)\n"
            "assert len(losses) == 5 and losses[-1] < losses[0], losses\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
