"""TE-NAS's own NTK computation (``get_ntk_n``), written out plainly: the yardstick for `ntk_condition_number`.

One backward per sample, read ``.grad`` of every parameter named ``*weight``,
eigenvalues in float64. Slow and obviously right, so the tests check the fast
path against it and `scripts/bench_ntk.py` times the fast path against it.
"""
from __future__ import annotations

import torch
from torch import nn


def plain_loop_kappa(model: nn.Module, x: torch.Tensor, train: bool = True) -> float:
    """κ of ``model`` on ``x`` (train-mode BatchNorm unless ``train=False``); changes the model's grads and BN stats."""
    model.train(train)
    model.zero_grad()
    logits = model(x)
    rows = []
    for i in range(len(x)):
        logits[i:i + 1].backward(torch.ones_like(logits[i:i + 1]), retain_graph=True)
        rows.append(torch.cat([p.grad.reshape(-1) for name, p in model.named_parameters()
                               if name.endswith("weight") and p.grad is not None]))
        model.zero_grad()
    jacobian = torch.stack(rows).double()
    eigenvalues = torch.linalg.eigvalsh(jacobian @ jacobian.T)
    return float(eigenvalues[-1] / eigenvalues[0])
