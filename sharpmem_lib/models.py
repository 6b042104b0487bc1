"""Models (paper §4). For now: the MLP used on the toy problem and small tabular data.

The WRN-16-8 for CIFAR and the FC net for Purchase/Texas arrive with the training engine.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from sharpmem_lib.validation import check_choice, check_positive

__all__ = ["MLP", "ACTIVATIONS", "count_parameters"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Sequential):
    """Fully connected net ``in -> hidden[0] -> ... -> hidden[-1] -> num_classes``.

    Parameters
    ----------
    in_features : input dimension.
    num_classes : number of output logits.
    hidden : widths of the hidden layers (may be empty: a linear model).
    activation : one of ``ACTIVATIONS``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
    ) -> None:
        check_positive("in_features", in_features, integer=True)
        check_positive("num_classes", num_classes, integer=True)
        for width in hidden:
            check_positive("hidden width", width, integer=True)
        check_choice("activation", activation, ACTIVATIONS)
        layers: list[nn.Module] = []
        width_in = in_features
        for width in hidden:
            layers += [nn.Linear(width_in, width), ACTIVATIONS[activation]()]
            width_in = width
        layers.append(nn.Linear(width_in, num_classes))
        super().__init__(*layers)
        self.in_features = in_features
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
