"""The checks of the networks: ``FullyConnectedMLP``, ``ConvEncoder`` and ``ConvDecoder``.

What is checked is what the models built on them rely on: the homework's attributes, the shapes of
the outputs (a batch of one too), that the output depends on the input and carries gradients to
every layer, and the layers the homework asks for (dense layers of the given sizes with a ReLU
between two of them and none after the last, so that means and log-std can be negative).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dgm.homework.diagnose import as_tensor, call, expect_shape, fail, instantiate, linears, seeded


def _depends_on_input(name: str, what: str, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)``, checked to change when ``x`` changes and to send gradients to every parameter."""
    out = call(name, what, net, x)
    first = out[0] if isinstance(out, tuple) else out
    first = as_tensor(name, what, first)
    other = call(name, what, net, x + 1.0)
    other = other[0] if isinstance(other, tuple) else other
    if torch.allclose(first, other):
        fail(name, f"{what} does not depend on its input: is the input passed through the layers?")
    total = sum(o.sum() for o in (out if isinstance(out, tuple) else (out,)))
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    unused = [n for (n, p), g in zip(net.named_parameters(), grads) if p.requires_grad and g is None]
    if unused:
        fail(
            name,
            f"the parameters {unused[:3]} get no gradient from {what}: a layer defined in __init__ "
            "is not used in forward",
        )
    return out


def check_FullyConnectedMLP(cls) -> None:
    """``FullyConnectedMLP(input_shape, hiddens, output_shape)``: dense layers with ReLU between them."""
    name = "FullyConnectedMLP"
    for n_in, hiddens, n_out in [(3, [8, 5], 4), (2, [], 6), (5, [7], 1)]:
        with seeded(0):
            net = instantiate(name, cls, n_in, hiddens, n_out)
        sizes = [n_in, *hiddens, n_out]
        got = [(m.in_features, m.out_features) for m in linears(net)]
        want = list(zip(sizes[:-1], sizes[1:]))
        if got != want:
            fail(
                name,
                f"FullyConnectedMLP({n_in}, {hiddens}, {n_out}) has dense layers "
                f"{' -> '.join(f'{a}x{b}' for a, b in got) or 'none'}, expected "
                f"{' -> '.join(f'{a}x{b}' for a, b in want)} (input, each hidden size, output)",
            )
        if not isinstance(getattr(net, "net", None), nn.Sequential):
            fail(
                name,
                "self.net is not the nn.Sequential of the layers (keep the homework's last line of __init__)",
            )
        kinds = [type(m).__name__ for m in net.net]
        if kinds and kinds[-1] != "Linear":
            fail(
                name,
                f"the last layer is a {kinds[-1]}: no activation after the last dense layer, so that the "
                "outputs (means, log-std) can be negative",
            )
        relus = sum(isinstance(m, nn.ReLU) for m in net.net)
        if relus != len(hiddens):
            fail(
                name,
                f"FullyConnectedMLP({n_in}, {hiddens}, {n_out}) has {relus} ReLU layers, expected "
                f"{len(hiddens)}: one after each hidden dense layer",
            )
        for batch in (16, 1):
            x = torch.randn(batch, n_in, generator=torch.Generator().manual_seed(batch))
            what = f"forward on a batch of shape ({batch}, {n_in})"
            out = as_tensor(name, what, _depends_on_input(name, what, net, x))
            expect_shape(name, what, out, (batch, n_out))
            if not torch.allclose(out, net.net(x)):
                fail(name, "forward does not return self.net(x)")


def check_ConvEncoder(cls) -> None:
    """``ConvEncoder(input_shape, n_latent)``: images (B, C, H, W) -> mu, log_std, each (B, n_latent)."""
    name = "ConvEncoder"
    shape, n_latent = (3, 32, 32), 16
    with seeded(0):
        net = instantiate(name, cls, shape, n_latent)
    for batch in (5, 1):
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        what = f"forward on images of shape ({batch}, 3, 32, 32)"
        out = _depends_on_input(name, what, net, x)
        if not isinstance(out, tuple) or len(out) != 2:
            fail(
                name,
                f"{what} should return (mu, log_std), got {type(out).__name__}"
                + (f" of length {len(out)}" if isinstance(out, tuple) else ""),
            )
        for part, t in zip(("mu", "log_std"), out):
            expect_shape(name, f"{what}: {part}", as_tensor(name, part, t), (batch, n_latent))
        if torch.allclose(out[0], out[1]):
            fail(
                name,
                "mu and log_std are the same numbers: split the 2 * n_latent outputs of the last layer "
                "with .chunk(2, dim=1)",
            )


def check_ConvDecoder(cls) -> None:
    """``ConvDecoder(n_latent, output_shape)``: codes (B, n_latent) -> mean images (B, C, H, W)."""
    name = "ConvDecoder"
    shape, n_latent = (3, 32, 32), 16
    with seeded(0):
        net = instantiate(name, cls, n_latent, shape)
    for batch in (64, 1):
        z = torch.randn(batch, n_latent, generator=torch.Generator().manual_seed(batch))
        what = f"forward on codes of shape ({batch}, {n_latent})"
        out = as_tensor(name, what, _depends_on_input(name, what, net, z))
        expect_shape(name, what, out, (batch, *shape))
    calls: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda m, a, o: calls.append(m))
        for m in net.modules()
        if not list(m.children())
    ]
    try:
        net(z)
    finally:
        for h in hooks:
            h.remove()
    if calls and isinstance(calls[-1], (nn.ReLU, nn.Sigmoid, nn.Softplus)):
        fail(
            name,
            f"the last layer is a {type(calls[-1]).__name__}, but the images are scaled to [-1, 1]: no "
            "ReLU or sigmoid after the last layer (the decoder outputs the means mu_x)",
        )
