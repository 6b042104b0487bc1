"""Architectures: parameter counts from their definitions, shapes, bad names."""

import pytest
import torch

from sharpmem_lib.models import FCNet, WideResNet, build_model, count_parameters


def wrn_parameter_count(depth, k, classes, c_in=3):
    """Count WRN-depth-k's parameters from the paper's definition, independently of the code."""
    n = (depth - 4) // 6
    widths = [16, 16 * k, 32 * k, 64 * k]
    total = c_in * 16 * 9  # stem conv, no bias
    c = 16
    for out in widths[1:]:
        for i in range(n):
            total += 2 * c + c * out * 9 + 2 * out + out * out * 9  # BN, conv3x3, BN, conv3x3
            if c != out or (i == 0 and out != widths[1]):
                total += c * out  # 1x1 projection shortcut
            c = out
    return total + 2 * c + c * classes + classes  # final BN, linear head


def test_wrn_16_8_is_the_real_one():
    model = WideResNet(depth=16, widen_factor=8, num_classes=100)
    assert count_parameters(model) == wrn_parameter_count(16, 8, 100) == 11_007_540  # ~11.0 M
    blocks = [m for m in model.modules() if m.__class__.__name__ == "_PreActBlock"]
    assert len(blocks) == 6  # 2 blocks a stage, 3 stages: depth 16 (not 22)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 1 + 3 * 2 * 2  # stem + 3 stages x 2 blocks x 2 convs
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 1
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 100)


def test_fc_net_follows_selena():
    model = FCNet(600, 100)
    widths = [600, 1024, 512, 256, 128, 100]
    assert count_parameters(model) == sum(a * b + b for a, b in zip(widths, widths[1:]))
    assert isinstance(model[1], torch.nn.Tanh)
    assert build_model("fc", (6169,), 100)(torch.zeros(3, 6169)).shape == (3, 100)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_small_cnn_shapes(shape):
    assert build_model("cnn", shape, 10)(torch.zeros(4, *shape)).shape == (4, 10)


def test_bad_model_arguments():
    with pytest.raises(ValueError,
                       match=r"model='resnet50' is not valid; choose one of \['mlp', 'fc', 'cnn', 'wrn16_8'\]"):
        build_model("resnet50", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="depth=18"):
        WideResNet(depth=18)
    with pytest.raises(ValueError, match="needs image inputs"):
        build_model("cnn", (64,), 10)
