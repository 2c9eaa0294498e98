"""What a user of the update rules relies on beyond the arithmetic: BatchNorm freeze, resume,
skipped parameters, errors, no host synchronisation, dtypes and devices."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from trainers.catalogue import get_rule, list_optimizers
from trainers.optim import create_optimizer, frozen_batchnorm_stats

ROOT = Path(__file__).resolve().parent.parent
TWO_PASS = [name for name in list_optimizers() if get_rule(name).passes == 2]


def bn_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(dtype)


def batch(seed=0, dtype=torch.float32, n=16):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=gen, dtype=dtype), torch.randint(0, 3, (n,), generator=gen)


def closure_for(model, opt, x, y, seen=None):
    def closure():
        opt.zero_grad()
        with frozen_batchnorm_stats(model, getattr(opt, "perturbed", False)):
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
        if seen is not None:
            seen.append({k: v.clone() for k, v in model[1].state_dict().items()})
        return loss

    return closure


@pytest.mark.parametrize("rule", TWO_PASS)
def test_second_pass_leaves_batchnorm_statistics_as_first_pass_left_them(rule):
    model = bn_model()
    opt = create_optimizer(rule, model.parameters(), lr=0.1)
    x, y = batch()
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    seen = []
    opt.step(closure_for(model, opt, x, y, seen))
    after = model[1].state_dict()
    assert len(seen) == 2
    # the first pass did update them (so the comparison below is not trivially true)
    assert not torch.equal(seen[0]["running_mean"], before["running_mean"])
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(after[key], seen[0][key]), key
        assert torch.equal(seen[1][key], seen[0][key]), key
    assert model[1].track_running_stats  # restored after the pass


def test_frozen_pass_still_normalises_with_batch_statistics():
    """Freezing is not eval mode: the forward is the training forward."""
    model = bn_model()
    x, _ = batch()
    trained_forward = model(x).detach()
    with frozen_batchnorm_stats(model):
        frozen_forward = model(x).detach()
    model.eval()
    eval_forward = model(x).detach()
    torch.testing.assert_close(frozen_forward, trained_forward, rtol=0, atol=0)
    assert not torch.allclose(eval_forward, trained_forward)


@pytest.mark.parametrize("rule", list_optimizers())
def test_resume_from_state_dict_continues_exactly(rule):
    torch.set_num_threads(1)
    model = bn_model()
    start = copy.deepcopy(model)
    b1, b2 = batch(1), batch(2)
    opt = create_optimizer(rule, model.parameters(), lr=0.1)
    opt.step(closure_for(model, opt, *b1))
    opt.step(closure_for(model, opt, *b2))

    first = start
    opt1 = create_optimizer(rule, first.parameters(), lr=0.1)
    opt1.step(closure_for(first, opt1, *b1))
    saved_model, saved_opt = copy.deepcopy(first.state_dict()), copy.deepcopy(opt1.state_dict())
    assert all("momentum_buffer" in s for s in saved_opt["state"].values())

    resumed = bn_model(seed=123)  # different initial weights, all overwritten by the load
    resumed.load_state_dict(saved_model)
    opt2 = create_optimizer(rule, resumed.parameters(), lr=0.1)
    opt2.load_state_dict(saved_opt)
    opt2.step(closure_for(resumed, opt2, *b2))
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("rule", list_optimizers())
def test_parameter_without_gradient_is_skipped(rule):
    model = bn_model()
    unused = nn.Parameter(torch.ones(4))
    opt = create_optimizer(rule, [*model.parameters(), unused], lr=0.1, weight_decay=0.1)
    opt.step(closure_for(model, opt, *batch()))
    assert torch.equal(unused.detach(), torch.ones(4))


@pytest.mark.parametrize("rule", TWO_PASS)
def test_parameter_with_gradient_in_one_pass_only_is_skipped(rule):
    """One parameter is used only in the first pass, another only in the second: neither moves."""
    model = bn_model()
    first_only, second_only = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = create_optimizer(rule, [*model.parameters(), first_only, second_only], lr=0.1, weight_decay=0.1)
    x, y = batch()
    calls = []

    def closure():
        opt.zero_grad()
        extra = first_only if not calls else second_only
        calls.append(1)
        with frozen_batchnorm_stats(model, opt.perturbed):
            loss = nn.functional.cross_entropy(model(x) + extra, y)
            loss.backward()
        return loss

    before = [p.detach().clone() for p in model.parameters()]
    opt.step(closure)
    assert torch.equal(first_only.detach(), torch.ones(3))
    assert torch.equal(second_only.detach(), torch.ones(3))
    assert all(not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        create_optimizer("adamw", [nn.Parameter(torch.ones(1))], lr=0.1)
    for name in ("sgd", "ugd", "sam", "asam", "sam_gns"):
        assert name in str(err.value)
    assert "adamw" in str(err.value)


@pytest.mark.parametrize("rule", TWO_PASS)
def test_two_pass_rule_needs_a_closure_and_ordered_steps(rule):
    opt = create_optimizer(rule, bn_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="first_step"):
        opt.second_step()


@pytest.mark.parametrize("bad", [{"rho": -0.1}, {"eta": -1.0}, {"lr": -1.0}, {"momentum": -0.5}])
def test_impossible_hyperparameters_are_rejected(bad):
    with pytest.raises(ValueError):
        create_optimizer("asam", bn_model().parameters(), **{"lr": 0.1, **bad})


@pytest.mark.parametrize("rule", list_optimizers())
def test_step_never_reads_a_value_back_to_the_host(rule, monkeypatch):
    model = bn_model()
    opt = create_optimizer(rule, model.parameters(), lr=0.1)
    closure = closure_for(model, opt, *batch())

    def refuse(*args, **kwargs):
        raise AssertionError("host synchronisation inside step")

    monkeypatch.setattr(torch.Tensor, "item", refuse)
    monkeypatch.setattr(torch.Tensor, "__float__", refuse)
    monkeypatch.setattr(torch.Tensor, "__bool__", refuse)
    monkeypatch.setattr(torch.Tensor, "tolist", refuse)
    opt.step(closure)
    opt.step(closure)


def _train_steps(rule, device, dtype):
    model = bn_model(dtype=dtype).to(device)
    opt = create_optimizer(rule, model.parameters(), lr=0.1)
    x, y = batch(dtype=dtype)
    x, y = x.to(device), y.to(device)
    losses = [opt.step(closure_for(model, opt, x, y)).detach() for _ in range(5)]
    assert all(p.dtype == dtype and p.device.type == torch.device(device).type for p in model.parameters())
    return torch.stack(losses).cpu()


@pytest.mark.parametrize("rule", list_optimizers())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rules_train_in_float32_and_float64_on_cpu(rule, dtype):
    losses = _train_steps(rule, "cpu", dtype)
    assert losses.dtype == dtype
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("rule", list_optimizers())
def test_float32_steps_follow_the_float64_arithmetic(rule):
    """In float32 the unit-gradient division happens inside torch's fused SGD kernel;
    in float64 the gradients are divided first. Both are the same rule to float32 precision."""
    single = bn_model()
    double = copy.deepcopy(single).double()
    x, y = batch()
    for model in (single, double):
        opt = create_optimizer(rule, model.parameters(), lr=0.1, rho=0.5)
        for _ in range(5):
            opt.step(closure_for(model, opt, x.to(next(model.parameters()).dtype), y))
    for a, b in zip(single.parameters(), double.parameters()):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("rule", list_optimizers())
def test_rules_on_cuda_match_cpu(rule):
    cpu = _train_steps(rule, "cpu", torch.float64)
    cuda = _train_steps(rule, "cuda", torch.float64)
    torch.testing.assert_close(cuda, cpu, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("rule", ["sgd", "sam"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_the_sgd_step_is_torch_sgd_bit_for_bit(rule, nesterov):
    """The rules' shared SGD step (torch's fused kernel) is torch.optim.SGD's arithmetic:
    the sgd rule, and SAM with rho 0 (it climbs nowhere), must equal it exactly, momentum buffers
    included."""
    models = [bn_model(dtype=torch.float64) for _ in range(2)]
    ours = create_optimizer(rule, models[0].parameters(), lr=0.1, rho=0.0, nesterov=nesterov, weight_decay=1e-3)
    sgd = torch.optim.SGD(models[1].parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=nesterov, fused=True)
    for seed in range(3):
        for model, opt in zip(models, (ours, sgd)):
            opt.step(closure_for(model, opt, *batch(seed, dtype=torch.float64)))
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)
        assert torch.equal(ours.state[a]["momentum_buffer"], sgd.state[b]["momentum_buffer"])


def test_a_parameter_whose_first_gradient_comes_later_starts_its_momentum_like_torch_sgd():
    """The fused kernel starts every momentum buffer on one step; a parameter without a gradient
    then gets its buffer when its first gradient comes, as torch.optim.SGD gives it (buffer = g)."""
    torch.manual_seed(0)
    first, late = nn.Linear(4, 4).double(), nn.Linear(4, 4).double()
    twins = copy.deepcopy((first, late))
    ours = create_optimizer("sgd", [*first.parameters(), *late.parameters()], lr=0.1)
    theirs = torch.optim.SGD([*twins[0].parameters(), *twins[1].parameters()], lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(8, 4, dtype=torch.float64)
    for step in range(3):
        for (a, b), opt in (((first, late), ours), (twins, theirs)):
            opt.zero_grad(set_to_none=True)
            out = a(x) if step == 0 else b(a(x))  # `late` has no gradient on the first step
            out.square().mean().backward()
            opt.step()
    for mine, reference in zip([*first.parameters(), *late.parameters()], [*twins[0].parameters(), *twins[1].parameters()]):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(
            ours.state[mine]["momentum_buffer"], theirs.state[reference]["momentum_buffer"], rtol=1e-12, atol=1e-14
        )


def test_training_and_resuming_never_import_dynamo():
    """A fresh process (a new Ray worker) trains, saves and restores every rule without importing
    torch._dynamo, which torch.optim's own add_param_group, zero_grad and state_dict methods
    import on first use (1.1-4 s; trainers/optim/sgd.py)."""
    probe = (
        "import sys, torch\n"
        "from trainers.catalogue import list_optimizers\n"
        "from trainers.config import TrainConfig\n"
        "from trainers.train import fit\n"
        "for rule in list_optimizers():\n"
        "    cfg = dict(dataset='digits', model='small_cnn', model_options={'width': 4}, optimizer=rule, batch_size=256)\n"
        "    states = []\n"
        "    fit(TrainConfig(**cfg, epochs=1), lambda metrics, state: states.append(state))\n"
        "    fit(TrainConfig(**cfg, epochs=2), state=states[-1])  # the optimizer's state restored\n"
        "print(len(states), 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "False"]
