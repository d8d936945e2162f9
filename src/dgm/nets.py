"""Neural networks the VAEs are built from."""

from __future__ import annotations

import math

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
            raise ValueError(f"expected input of shape (B, {self.input_shape[0]}), got {tuple(x.shape)}")
        return self.net(x)


def check_image_shape(shape: tuple[int, ...], factor: int) -> tuple[int, int, int]:
    """``shape`` as (C, H, W) of positive ints with H and W divisible by ``factor``, else ``ValueError``."""
    if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"an image shape is (C, H, W) of positive integers, got {tuple(shape)}")
    c, h, w = shape
    if h % factor or w % factor:
        raise ValueError(
            f"height and width must be divisible by {factor} (the network halves them "
            f"{factor.bit_length() - 1} times), got {h}x{w}"
        )
    return c, h, w


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> mu, log_std (B, n_latent): a conv, stride-2 convs, then a dense layer.

    With ``channels=(32, 64, 128, 256)`` (the homework's suggestion): conv(32) -> relu -> conv(64)
    -> relu -> conv(128) -> relu -> conv(256) -> relu -> fc(2 n_latent). Each conv after the first
    halves H and W, so H and W must be divisible by 2 ** (len(channels) - 1).
    """

    def __init__(
        self, input_shape: tuple[int, int, int], n_latent: int, channels: tuple[int, ...] = (32, 64, 128, 256)
    ) -> None:
        super().__init__()
        if len(channels) < 1 or n_latent < 1:
            raise ValueError(f"need at least one conv and n_latent >= 1, got {channels}, {n_latent}")
        n_halvings = len(channels) - 1
        c, h, w = check_image_shape(tuple(input_shape), 2**n_halvings)
        self.input_shape = (c, h, w)
        self.n_latent = n_latent
        layers: list[nn.Module] = [nn.Conv2d(c, channels[0], 3, padding=1), nn.ReLU()]  # HxW kept
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]  # HxW => H/2xW/2
        self.convs = nn.Sequential(*layers)
        self.base_size = (channels[-1], h >> n_halvings, w >> n_halvings)
        self.flatten = nn.Flatten()  # (B, *base_size) -> (B, prod(base_size))
        self.fc = nn.Linear(math.prod(self.base_size), 2 * n_latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected input of shape (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        h = self.flatten(self.convs(x))  # (B, c, H/8, W/8) -> (B, c * H/8 * W/8)
        mu, log_std = self.fc(h).chunk(2, dim=1)  # (B, n_latent) each
        return mu, log_std


class ConvDecoder(nn.Module):
    """(B, n_latent) -> (B, C, H, W) mean image: a dense layer, then stride-2 transposed convs.

    With ``channels=(128, 64, 32)`` (the homework's suggestion): fc -> (128, H/8, W/8) -> relu ->
    convT(128) -> relu -> convT(64) -> relu -> convT(32) -> relu -> convT(C). Each of the first
    len(channels) transposed convs doubles H and W.
    """

    def __init__(
        self, n_latent: int, output_shape: tuple[int, int, int], channels: tuple[int, ...] = (128, 64, 32)
    ) -> None:
        super().__init__()
        if len(channels) < 1 or n_latent < 1:
            raise ValueError(
                f"need at least one transposed conv and n_latent >= 1, got {channels}, {n_latent}"
            )
        n_doublings = len(channels)
        c, h, w = check_image_shape(tuple(output_shape), 2**n_doublings)
        self.n_latent = n_latent
        self.output_shape = (c, h, w)
        self.base_size = (channels[0], h >> n_doublings, w >> n_doublings)
        self.fc = nn.Linear(n_latent, math.prod(self.base_size))
        self.unflatten = nn.Unflatten(1, self.base_size)  # (B, prod(base_size)) -> (B, *base_size)
        layers: list[nn.Module] = [nn.ReLU()]
        for c_in, c_out in zip((channels[0], *channels[:-1]), channels):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # HxW => 2Hx2W
        layers.append(nn.ConvTranspose2d(channels[-1], c, 3, padding=1))  # HxW kept, C channels
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.n_latent:
            raise ValueError(f"expected input of shape (B, {self.n_latent}), got {tuple(z.shape)}")
        h = self.unflatten(self.fc(z))  # (B, n_latent) -> (B, c, H/8, W/8)
        return self.convs(h)  # (B, C, H, W)


def trace_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Run ``net`` on ``x`` and list each leaf layer with the shape of its output, in call order."""
    rows: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for name, module in net.named_modules():
        if not list(module.children()):

            def hook(m, inputs, output, name=name):
                out = output[0] if isinstance(output, tuple) else output
                rows.append((f"{name}: {m}", tuple(out.shape)))

            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return rows
