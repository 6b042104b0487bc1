"""The shared tensor, device and seed helpers, against values by hand."""

import random

import numpy as np
import pytest
import torch
from torch import nn

import sharpmem_lib.train as train
from sharpmem_lib.tensors import as_tensor, cpu_state, seed_everything, select_device, to_float


def test_as_tensor_keeps_or_converts_the_dtype():
    images = np.array([[0, 128, 255]], dtype=np.uint8)
    kept = as_tensor(images, None, torch.device("cpu"))
    assert kept.dtype == torch.uint8 and kept.tolist() == [[0, 128, 255]]  # images stay compact
    labels = as_tensor([3, 1, 2], torch.int64, torch.device("cpu"))
    assert labels.dtype == torch.int64 and labels.tolist() == [3, 1, 2]
    t = torch.arange(4, dtype=torch.int32)
    assert as_tensor(t, torch.float32, torch.device("cpu")).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert as_tensor(t, None, torch.device("cpu")) is t  # already there: no copy


def test_to_float_scales_only_uint8_images():
    x = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    out = to_float(x)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), np.array([0, 1, 128, 255], np.float32) / np.float32(255))
    assert x.tolist() == [0, 1, 128, 255]  # the input is not modified
    features = torch.tensor([0.5, 2.0, -3.0], dtype=torch.float64)
    assert to_float(features).dtype == torch.float32 and to_float(features).tolist() == [0.5, 2.0, -3.0]


def test_cpu_state_is_a_snapshot():
    model = nn.BatchNorm1d(3)  # parameters and buffers
    snapshot = cpu_state(model)
    assert snapshot.keys() == model.state_dict().keys()
    with torch.no_grad():
        model.weight.add_(1.0)
    model.running_mean.add_(2.0)
    assert snapshot["weight"].tolist() == [1.0, 1.0, 1.0] and snapshot["running_mean"].tolist() == [0.0, 0.0, 0.0]
    assert all(v.device.type == "cpu" and not v.requires_grad for v in snapshot.values())


def test_seed_everything_seeds_python_numpy_and_torch():
    def draws():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert all(a != b for a, b in zip(draws(), first))


def test_device_selection():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match=r"device='tpu' is not valid; choose one of \['auto', 'cpu', 'cuda', 'mps'\]"):
        select_device("tpu")


def test_one_home_for_each_helper():
    """The engine uses these helpers; it does not keep copies of its own."""
    assert train.select_device is select_device and train.seed_everything is seed_everything
    assert train.BestValidation.__module__ == "sharpmem_lib.train"
    for name in ("_as_tensor", "_to_float", "_cpu_state"):
        assert getattr(train, name, None) in (None, as_tensor, to_float, cpu_state)
