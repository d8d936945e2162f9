"""Neural networks the VAEs are built from."""

from __future__ import annotations

import torch
import torch.nn as nn


class FullyConnectedMLP(nn.Module):
    """Dense layers with ReLU between them (none after the last): (B, input_shape) -> (B, output_shape)."""

    def __init__(self, input_shape: int, hiddens: list[int], output_shape: int) -> None:
        if not isinstance(hiddens, list):
            raise TypeError(f"hiddens must be a list of layer sizes, got {type(hiddens).__name__}")
        sizes = [input_shape, *hiddens, output_shape]
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be positive integers, got {sizes}")
        super().__init__()
        self.input_shape = (input_shape,)
        self.output_shape = (output_shape,)
        self.hiddens = hiddens
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])  # no ReLU after the last layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.input_shape[0]:
            raise ValueError(
                f"expected input of shape (B, {self.input_shape[0]}), got {tuple(x.shape)}"
            )
        return self.net(x)
