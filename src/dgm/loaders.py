"""Mini-batches from a tensor that already sits on its device.

A ``torch.utils.data.DataLoader`` over a numpy array fetches every example separately, collates
the batch on the CPU and copies it to the device: per-item Python work at every step. When the
whole data set fits on the device (CIFAR-10 is 0.6 GB as float32), :class:`TensorLoader` keeps it
there as one tensor and makes each batch with a single indexing operation on the device.
:func:`dgm.training.train_model` accepts it like any loader.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorLoader:
    """Batches of ``data`` (N, ...) in order, or shuffled anew each pass, on ``data``'s device.

    ``seed`` fixes the shuffling order (``None``: torch's global random stream).
    """

    def __init__(
        self,
        data: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = 0,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(data, torch.Tensor) or data.dim() < 1 or len(data) == 0:
            raise ValueError("data must be a non-empty tensor of examples (N, ...)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        # On the CPU: the same order on any device.
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n, b = len(self.data), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[torch.Tensor]:
        n = len(self.data)
        order = torch.randperm(n, generator=self._generator).to(self.data.device) if self.shuffle else None
        for i in range(len(self)):
            start = i * self.batch_size
            if order is None:
                yield self.data[start : start + self.batch_size]  # a view, no copy
            else:
                yield self.data[order[start : start + self.batch_size]]  # one gather on the device
