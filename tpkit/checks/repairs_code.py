"""Source of the reference functions that a repair defines in the notebook's namespace.

Repairs of functions and classes cannot travel as data: the kit sends this code to the kernel, which
runs it there (the same definitions as `reference`, written to run without the kit)."""

PRED = """\
def pred(X, W, B):
    import torch
    return torch.softmax(torch.mm(X, W) + B, dim=1)
"""

COUT = """\
def cout(Y, Yhat):
    import torch
    return -torch.mean(torch.sum(Y * torch.log(Yhat + 1e-16), dim=1))
"""

PRED2 = """\
def pred2(X, W1, B1, W2, B2):
    import torch
    return torch.softmax(torch.mm(torch.relu(torch.mm(X, W1) + B1), W2) + B2, dim=1)
"""


def mlp_class(d: int, nb_hidden: int = 100, p: int = 3) -> str:
    return f"""\
import torch as _torch_ref


class MLP(_torch_ref.nn.Module):
    def __init__(self):
        super(MLP, self).__init__()
        self.c1 = _torch_ref.nn.Linear({d}, {nb_hidden}).double()
        self.c2 = _torch_ref.nn.Linear({nb_hidden}, {p}).double()

    def forward(self, x):
        return _torch_ref.softmax(self.c2(_torch_ref.relu(self.c1(x))), dim=1)
"""
