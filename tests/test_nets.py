from __future__ import annotations

import pytest
import torch

from dgm.nets import ConvDecoder, ConvEncoder, check_image_shape, trace_shapes

SMALL = (4, 8, 8, 8)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 16, 24), (5, 8, 40)])
def test_encoder_and_decoder_shapes(shape):
    enc = ConvEncoder(shape, n_latent=6, channels=SMALL)
    mu, log_std = enc(torch.randn(2, *shape))
    assert mu.shape == log_std.shape == (2, 6)
    dec = ConvDecoder(6, shape, channels=SMALL[-2::-1])
    assert dec(torch.randn(3, 6)).shape == (3, *shape)
    assert enc.base_size == (8, shape[1] // 8, shape[2] // 8) == dec.base_size


def test_homework_architecture_layer_by_layer():
    enc = ConvEncoder((3, 32, 32), 256)
    rows = trace_shapes(enc, torch.zeros(2, 3, 32, 32))
    convs = [(name, shape) for name, shape in rows if "Conv2d" in name]
    assert [s for _, s in convs] == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert rows[-1][1] == (2, 512) and "Linear(in_features=4096" in rows[-1][0]
    dec = ConvDecoder(256, (3, 32, 32))
    rows = trace_shapes(dec, torch.zeros(2, 256))
    shapes = [s for name, s in rows if "ConvTranspose2d" in name]
    assert shapes == [(2, 128, 8, 8), (2, 64, 16, 16), (2, 32, 32, 32), (2, 3, 32, 32)]
    assert rows[1][1] == (2, 128, 4, 4)  # after the unflatten: the homework's base_size
    assert not enc._forward_hooks and all(not m._forward_hooks for m in enc.modules())


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvEncoder((3, 30, 32), 4)
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvDecoder(4, (3, 32, 36))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        ConvEncoder((32, 32), 4)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        check_image_shape((3, 32.0, 32), 8)
    enc = ConvEncoder((3, 16, 16), 4, channels=SMALL)
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        enc(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        ConvDecoder(4, (3, 16, 16), channels=(8, 8, 8))(torch.zeros(2, 5))
    # Two halvings only need divisibility by 4.
    assert ConvEncoder((3, 12, 12), 4, channels=(4, 8, 8))(torch.zeros(1, 3, 12, 12))[0].shape == (1, 4)
