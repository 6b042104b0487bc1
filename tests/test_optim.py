"""The sharpness-aware family against an independent autograd computation."""

import copy
import io
import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad

from sharpmem_lib.optim import ALGORITHMS, SharpnessAware, coefficients, make_optimizer



pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: 1e-6 comparisons test the algebra


LAM, XI, RHO, LR = 1.5, 0.3, 0.05, 0.1


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4))


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 3, generator=g), torch.randint(0, 4, (16,), generator=g)


def reference_update(model, x, y, a, b, rho, lr, adaptive):
    """w - lr * (a g(w) + b g(w + e)), computed from scratch with torch.func."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}

    def loss(p):
        return nn.functional.cross_entropy(functional_call(model, p, (x,)), y)

    g0 = grad(loss)(params)
    if adaptive:
        norm = torch.sqrt(sum(((params[k].abs() * g0[k]) ** 2).sum() for k in params))
        e = {k: rho * params[k] ** 2 * g0[k] / norm for k in params}
    else:
        norm = torch.sqrt(sum((g0[k] ** 2).sum() for k in params))
        e = {k: rho * g0[k] / norm for k in params}
    g1 = grad(loss)({k: params[k] + e[k] for k in params})
    return {k: params[k] - lr * (a * g0[k] + b * g1[k]) for k in params}


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_update_matches_autograd_reference(algorithm, adaptive):
    model = tiny_model()
    x, y = batch()
    coef = coefficients(algorithm, lam=LAM, xi=XI)
    expected = reference_update(model, x, y, coef.a, coef.b, RHO, LR, adaptive)

    opt = make_optimizer(model, algorithm, lr=LR, rho=RHO, lam=LAM, xi=XI, adaptive=adaptive)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], atol=1e-6, rtol=0)


def test_coefficients_are_the_papers():
    assert coefficients("sgd") == (c := coefficients("sgd")) and (c.a, c.b) == (1.0, 0.0)
    assert (coefficients("sam").a, coefficients("sam").b) == (0.0, 1.0)
    sharp = coefficients("sharp", lam=LAM)  # eq. 4: (1 + lam) L(w) - lam L(w + e)
    assert (sharp.a, sharp.b) == pytest.approx((1 + LAM, -LAM))
    reg = coefficients("sharpreg", lam=LAM, xi=XI)  # eq. 6: (1 + lam - xi) L(w) - lam L(w + e)
    assert (reg.a, reg.b) == pytest.approx((1 + LAM - XI, -LAM))
    # eq. 6 with xi = 0 is eq. 4; eq. 4 with lam = 0 is SGD
    assert coefficients("sharpreg", lam=LAM, xi=0.0) == coefficients("sharp", lam=LAM)
    assert coefficients("sharp", lam=0.0) == coefficients("sgd")


def test_sgd_is_exactly_the_base_optimizer():
    """(1, 0): one closure call and bit-for-bit the base optimizer, momentum and decay included
    (ours takes torch's fused SGD, the reference its default per-tensor loop)."""
    ours, ref = tiny_model(), tiny_model()
    opt = make_optimizer(ours, "sgd", lr=LR, momentum=0.9, weight_decay=5e-4, nesterov=True)
    assert opt.base_optimizer.defaults["fused"] is True
    base = torch.optim.SGD(ref.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4, nesterov=True)
    calls = []
    for step in range(5):
        x, y = batch(step)

        def closure():
            calls.append(1)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(ours(x), y)
            loss.backward()
            return loss

        opt.step(closure)
        base.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        base.step()
    assert len(calls) == 5
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("algorithm", ["sam", "sharp", "sharpreg"])
def test_second_pass_does_not_touch_batchnorm_statistics(algorithm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    reference = copy.deepcopy(model)
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    opt = make_optimizer(model, algorithm, lr=LR, rho=0.5, lam=LAM, xi=XI)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    assert len(calls) == 2
    reference(x)  # exactly one training-mode forward pass at w
    bn, ref_bn = model[1], reference[1]
    assert torch.equal(bn.running_mean, ref_bn.running_mean)
    assert torch.equal(bn.running_var, ref_bn.running_var)
    assert bn.num_batches_tracked.item() == ref_bn.num_batches_tracked.item() == 1


def test_state_dict_round_trip_keeps_momentum():
    model = tiny_model()
    opt = make_optimizer(model, "sam", lr=LR, rho=RHO, momentum=0.9)

    def run(m, o, steps, offset):
        for s in range(steps):
            x, y = batch(offset + s)

            def closure():
                o.zero_grad()
                loss = nn.functional.cross_entropy(m(x), y)
                loss.backward()
                return loss

            o.step(closure)

    run(model, opt, 3, 0)
    clone = copy.deepcopy(model)
    clone_opt = make_optimizer(clone, "sam", lr=LR, rho=RHO, momentum=0.9)
    # Through a file, as a resume does (state_dict() returns references to live buffers).
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    clone_opt.load_state_dict(torch.load(buffer, weights_only=True))
    run(model, opt, 2, 10)
    run(clone, clone_opt, 2, 10)
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)


def test_lr_scheduler_drives_the_base_optimizer():
    model = tiny_model()
    opt = make_optimizer(model, "sam", lr=0.1, rho=RHO)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = batch()

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "scheduler.step() before optimizer.step()"
        opt.step(closure)
        sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(algorithm="adam"), "algorithm='adam' is not valid; choose one of ['sgd', 'sam', 'sharp', 'sharpreg']"),
        (dict(algorithm="sam", rho=-0.1), "rho=-0.1"),
        (dict(algorithm="sharp", lam=-1.0), "lam=-1.0"),
        (dict(algorithm="sharpreg", lam=1.0, xi=float("nan")), "xi=nan"),
        (dict(algorithm="sam", base="rmsprop"), "base='rmsprop' is not valid"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        make_optimizer(tiny_model(), **kwargs)


def test_step_requires_closure():
    opt = SharpnessAware(tiny_model().parameters(), torch.optim.SGD, rho=RHO, lr=LR)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
