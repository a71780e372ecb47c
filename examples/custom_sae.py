"""A custom SAE for `synthsae bench --sae examples/custom_sae.py:make_sae` (or the module name
`custom_sae:make_sae` when importable): a TopK SAE with tied initialisation trained on plain MSE."""

import torch
from torch import nn


class TinyTopK(nn.Module):
    def __init__(self, d_in: int, d_sae: int, k: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d_sae, d_in, generator=g)
        self.W_dec = nn.Parameter(w / w.norm(dim=1, keepdim=True))
        self.W_enc = nn.Parameter(self.W_dec.detach().T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.k = k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return (self.decode(self.encode(x)) - x).pow(2).sum(-1).mean()


def make_sae(d_in: int, d_sae: int, l0: float, seed: int) -> TinyTopK:
    return TinyTopK(d_in, d_sae, max(1, round(l0)), seed)
