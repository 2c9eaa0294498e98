"""The update rules against a hand computation of docs/optimizers.md, in float64.

The reference below uses only `torch.autograd.grad` and plain tensor arithmetic on a functional
two-layer network; it shares no code with `trainers.optim`.
"""

import pytest
import torch

from trainers.catalogue import list_optimizers
from trainers.optim import create_optimizer

EPS = 1e-12  # docs/optimizers.md: added to every norm
LR, MOMENTUM, WD, RHO, ETA = 0.1, 0.9, 5e-4, 0.05, 0.01


def net(w, x):
    w1, b1, w2, b2 = w
    return torch.tanh(x @ w1.T + b1) @ w2.T + b2


def loss_fn(w, x, y, scale=1.0):
    return scale * torch.nn.functional.cross_entropy(net(w, x), y)


def norm(tensors):
    return torch.sqrt(sum((t * t).sum() for t in tensors))


def reference(rule, w0, batches, lr=LR, momentum=MOMENTUM, wd=WD, rho=RHO, eta=ETA, scale=1.0):
    """Weights after one step per batch, computed straight from the definitions."""
    w = [t.detach().clone().requires_grad_(True) for t in w0]
    bufs = None
    for x, y in batches:
        g = torch.autograd.grad(loss_fn(w, x, y, scale), w)
        if rule == "sgd":
            d = g
        elif rule == "ugd":
            n = norm(g)
            d = [gi / (n + EPS) for gi in g]
        else:
            if rule == "asam":
                t = [wi.detach().abs() + eta for wi in w]
                n = norm([ti * gi for ti, gi in zip(t, g)])
                e = [rho * ti * ti * gi / (n + EPS) for ti, gi in zip(t, g)]
            else:
                n = norm(g)
                e = [rho * gi / (n + EPS) for gi in g]
            w_e = [(wi + ei).detach().requires_grad_(True) for wi, ei in zip(w, e)]
            d = torch.autograd.grad(loss_fn(w_e, x, y, scale), w_e)
            if rule == "sam_gns":
                n = norm(d)
                d = [di / (n + EPS) for di in d]
        d = [di + wd * wi.detach() for di, wi in zip(d, w)]  # coupled weight decay
        bufs = [di.clone() for di in d] if bufs is None else [momentum * b + di for b, di in zip(bufs, d)]
        w = [(wi.detach() - lr * b).requires_grad_(True) for wi, b in zip(w, bufs)]
    return [wi.detach() for wi in w]


class Net(torch.nn.Module):
    def __init__(self, w0):
        super().__init__()
        self.w = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in w0])

    def forward(self, x):
        return net(list(self.w), x)


def initial_weights(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(6, 5), (6,), (3, 6), (3,)]
    return [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]


def make_batches(n=3, dtype=torch.float64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 5, generator=gen, dtype=dtype), torch.randint(0, 3, (8,), generator=gen)) for _ in range(n)]


def run_optimizer(rule, w0, batches, scale=1.0, **options):
    model = Net(w0)
    opt = create_optimizer(
        rule, model.parameters(), **{"lr": LR, "momentum": MOMENTUM, "weight_decay": WD, "rho": RHO, "eta": ETA, **options}
    )
    for x, y in batches:

        def closure():
            opt.zero_grad()
            loss = scale * torch.nn.functional.cross_entropy(model(x), y)  # noqa: B023 (called in this iteration)
            loss.backward()
            return loss

        opt.step(closure)
    return [p.detach() for p in model.parameters()], opt


@pytest.mark.parametrize("rule", list_optimizers())
def test_three_steps_match_hand_computation(rule):
    w0, batches = initial_weights(), make_batches(3)
    got, _ = run_optimizer(rule, w0, batches)
    want = reference(rule, w0, batches)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-9)
    # the rule really moved the weights (a no-op optimizer would fail the line above anyway,
    # but make the distance between rules visible too)
    assert max((g - w0i).abs().max().item() for g, w0i in zip(got, w0)) > 1e-3


def test_rules_differ_from_each_other():
    w0, batches = initial_weights(), make_batches(2)
    finals = {rule: torch.cat([t.flatten() for t in run_optimizer(rule, w0, batches)[0]]) for rule in list_optimizers()}
    rules = list(finals)
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            assert (finals[a] - finals[b]).abs().max() > 1e-6, (a, b)


@pytest.mark.parametrize("rule", ["ugd", "sam_gns"])
def test_unit_gradient_rules_ignore_loss_scale(rule):
    w0, batches = initial_weights(), make_batches(2)
    plain, _ = run_optimizer(rule, w0, batches)
    scaled, _ = run_optimizer(rule, w0, batches, scale=10.0)
    for a, b in zip(plain, scaled):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_sam_depends_on_loss_scale():
    w0, batches = initial_weights(), make_batches(2)
    plain, _ = run_optimizer("sam", w0, batches)
    scaled, _ = run_optimizer("sam", w0, batches, scale=10.0)
    assert max((a - b).abs().max().item() for a, b in zip(plain, scaled)) > 1e-4


def test_sam_gns_update_has_norm_lr_without_momentum_and_decay():
    w0, batches = initial_weights(), make_batches(1)
    for lr in (0.1, 0.37):
        got, _ = run_optimizer("sam_gns", w0, batches, lr=lr, momentum=0.0, weight_decay=0.0)
        step = torch.sqrt(sum(((g - w) ** 2).sum() for g, w in zip(got, w0)))
        assert abs(step.item() - lr) < 1e-9


def test_rho_is_read_from_param_groups():
    """A scheduler or checkpoint changes rho through param_groups: rho 0 turns SAM into SGD."""
    w0, batches = initial_weights(), make_batches(1)
    model = Net(w0)
    opt = create_optimizer("sam", model.parameters(), lr=LR)
    for group in opt.param_groups:
        group["rho"] = 0.0
    x, y = batches[0]

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    want = reference("sgd", w0, batches)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rule", ["sam", "asam", "sam_gns"])
def test_explicit_first_and_second_step_equal_step_closure(rule):
    w0, batches = initial_weights(), make_batches(2)
    model = Net(w0)
    opt = create_optimizer(rule, model.parameters(), lr=LR, rho=RHO, eta=ETA)
    for x, y in batches:
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.first_step()
        assert opt.perturbed
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.second_step()
        assert not opt.perturbed
        opt.zero_grad()
    want = reference(rule, w0, batches)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=0, atol=1e-9)
