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


def test_small_cnn_head_sees_every_position():
    """SmallCNN's parameters counted by hand: conv3x3 (+bias) and BN per block, a linear head on
    2w x 7 x 7 features (the old global-average head had 2w inputs and a third conv), and one
    optional hidden layer. The head keeps positions apart: with only the top-left 4 x 4 cells'
    head weights, a change in the bottom-right 4 x 4 pixels (outside their receptive field,
    pixels 0-18) does not reach the logits; with only the bottom-right cell's, it does."""
    from sharpmem_lib.models import SmallCNN

    for w, hidden in ((16, 0), (8, 32)):
        convs = (1 * 9 + 1) * w + 2 * w + (w * 9 + 1) * 2 * w + 2 * 2 * w
        flat = 2 * w * 7 * 7
        head = flat * 10 + 10 if hidden == 0 else flat * hidden + hidden + hidden * 10 + 10
        assert count_parameters(SmallCNN(1, 10, w, hidden)) == convs + head
    torch.manual_seed(0)
    model = SmallCNN(1, 10, width=4).eval()
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 1, 28, 28)
    corner = x.clone()
    corner[..., 24:, 24:] = 1.0 - corner[..., 24:, 24:]
    cells = [(c, r, k) for c in range(8) for r in range(7) for k in range(7)]
    weights = model.head.weight.detach().clone()
    with torch.no_grad():
        model.head.weight.copy_(weights)
        model.head.weight[:, [c * 49 + r * 7 + k for c, r, k in cells if r > 3 or k > 3]] = 0.0
        torch.testing.assert_close(model(corner), model(x), rtol=0, atol=0)
        model.head.weight.copy_(weights)
        model.head.weight[:, [c * 49 + r * 7 + k for c, r, k in cells if (r, k) != (6, 6)]] = 0.0
        assert not torch.allclose(model(corner), model(x))
    clone = SmallCNN(1, 10, width=4).eval()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="hidden=-1 is not valid"):
        SmallCNN(1, 10, hidden=-1)


def test_bad_model_arguments():
    with pytest.raises(ValueError,
                       match=r"model='resnet50' is not valid; choose one of \['mlp', 'fc', 'cnn', 'wrn16_8'\]"):
        build_model("resnet50", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="depth=18"):
        WideResNet(depth=18)
    with pytest.raises(ValueError, match="needs image inputs"):
        build_model("cnn", (64,), 10)
