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


def _parts(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _depends_on_input(name: str, what: str, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)``, checked to change with ``x`` and to send gradients to every parameter (``net`` in
    eval mode, so that a batch norm treats a batch of one as any other)."""
    out = call(name, what, net, x)
    first = as_tensor(name, what, _parts(out)[0])
    other = torch.randn(x.shape, generator=torch.Generator().manual_seed(99), dtype=x.dtype)
    if torch.allclose(first, as_tensor(name, what, _parts(call(name, what, net, other))[0])):
        fail(name, f"{what} does not depend on its input: is the input passed through the layers?")
    total = sum(as_tensor(name, what, o).sum() for o in _parts(out))
    if not total.requires_grad:
        fail(name, f"{what} carries no gradient: no .detach() or torch.no_grad() in forward")
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


def _can_be_negative(name: str, what: str, net: nn.Module, x: torch.Tensor) -> None:
    """Fail if no output of ``net`` can be negative: its last layer's bias lowered by 10 must show it.

    A ReLU, sigmoid or softplus after the last layer (a module or a function) keeps every output at or
    above zero however the layer's bias is set; tanh and ``2 * sigmoid - 1`` do not.
    """
    calls: list[nn.Module] = []
    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, a, o: calls.append(m)) for m in leaves]
    try:
        call(name, what, net, x)
    finally:
        for h in hooks:
            h.remove()
    last = next((m for m in reversed(calls) if isinstance(getattr(m, "bias", None), torch.Tensor)), None)
    if last is None:
        return  # no biased layer to move: nothing to learn from this probe
    with torch.no_grad():
        last.bias -= 10.0
        try:
            low = max(float(o.min()) for o in _parts(call(name, what, net, x)))  # each output's lowest
        finally:
            last.bias += 10.0
    if low >= 0:
        fail(
            name,
            f"{what} can never be negative (a ReLU, sigmoid or softplus after the last layer?), but "
            "means, log-stds and images scaled to [-1, 1] must be able to be: no such activation at the end",
        )


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
        net.eval()
        kinds = [type(m).__name__ for m in net.net.modules() if not list(m.children())]  # nested too
        if kinds and kinds[-1] != "Linear":
            fail(
                name,
                f"the last layer is a {kinds[-1]}: no activation after the last dense layer, so that the "
                "outputs (means, log-std) can be negative",
            )
        relus = kinds.count("ReLU")
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
        net = instantiate(name, cls, shape, n_latent).eval()
    for batch in (5, 1):
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        what = f"forward on images of shape ({batch}, 3, 32, 32)"
        out = _depends_on_input(name, what, net, x)
        if not isinstance(out, tuple) or len(out) != 2:
            got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            fail(name, f"{what} should return a tuple (mu, log_std), got a {got}")
        for part, t in zip(("mu", "log_std"), out):
            expect_shape(name, f"{what}: {part}", as_tensor(name, part, t), (batch, n_latent))
        if torch.allclose(out[0], out[1]):
            fail(
                name,
                "mu and log_std are the same numbers: split the 2 * n_latent outputs of the last layer "
                "with .chunk(2, dim=1)",
            )
    _can_be_negative(name, "forward: mu or log_std", net, x)


def check_ConvDecoder(cls) -> None:
    """``ConvDecoder(n_latent, output_shape)``: codes (B, n_latent) -> mean images (B, C, H, W)."""
    name = "ConvDecoder"
    shape, n_latent = (3, 32, 32), 16
    with seeded(0):
        net = instantiate(name, cls, n_latent, shape).eval()
    for batch in (64, 1):
        z = torch.randn(batch, n_latent, generator=torch.Generator().manual_seed(batch))
        what = f"forward on codes of shape ({batch}, {n_latent})"
        out = as_tensor(name, what, _depends_on_input(name, what, net, z))
        expect_shape(name, what, out, (batch, *shape))
    _can_be_negative(name, "the decoded image", net, z)
