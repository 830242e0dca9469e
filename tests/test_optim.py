"""sharpminima.optim against torch.optim: the same numbers, bit for bit, on the same CPU.

Both run in this process on the same tensors, so bitwise equality is a fair test here (it
says nothing about another machine). The engine replaced torch.optim only to skip its
torch._dynamo import; these tests are what makes that swap safe.
"""

import pytest
import torch

from sharpminima import optim


def _pair(seed=0):
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    return a, b


def _run(model, opt, sched, steps, skip_bias_at=(), milestone_every=None):
    g = torch.Generator().manual_seed(1)
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        x = torch.randn(16, 7, generator=g)
        y = torch.randint(0, 3, (16,), generator=g)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if t in skip_bias_at:  # a parameter without a gradient this step: skipped, no state made
            model[2].bias.grad = None
        opt.step()
        if milestone_every and (t + 1) % milestone_every == 0:
            sched.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("kw", [
    dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, weight_decay=5e-4),
    dict(momentum=0.9, nesterov=True, weight_decay=1e-4),
])
def test_sgd_and_schedule_equal_torch_bitwise(kw):
    ours_m, ref_m = _pair()
    ours = optim.SGD(ours_m.parameters(), lr=0.1, **kw)
    ref = torch.optim.SGD(ref_m.parameters(), lr=0.1, **kw)
    s_ours = optim.MultiStepLR(ours, milestones=[2, 4, 4], gamma=0.1)
    s_ref = torch.optim.lr_scheduler.MultiStepLR(ref, milestones=[2, 4, 4], gamma=0.1)
    a = _run(ours_m, ours, s_ours, 30, skip_bias_at=(0, 7), milestone_every=5)
    b = _run(ref_m, ref, s_ref, 30, skip_bias_at=(0, 7), milestone_every=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert ours.param_groups[0]["lr"] == ref.param_groups[0]["lr"]  # 0.1 * 0.1 * 0.01, chained
    if kw["momentum"]:
        for p, q in zip(ours_m.parameters(), ref_m.parameters()):
            assert torch.equal(ours.state[p]["momentum_buffer"], ref.state[q]["momentum_buffer"])


def test_adam_equals_torch_bitwise():
    ours_m, ref_m = _pair(3)
    ours = optim.Adam(ours_m.parameters(), lr=1.2e-3, weight_decay=1e-4)
    ref = torch.optim.Adam(ref_m.parameters(), lr=1.2e-3, weight_decay=1e-4)
    a = _run(ours_m, ours, None, 25, skip_bias_at=(0, 3))
    b = _run(ref_m, ref, None, 25, skip_bias_at=(0, 3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_state_dict_resumes_to_the_same_numbers():
    """Stop after 10 steps, rebuild the optimizer and schedule from their state dicts (as a
    resumed run does), go on: the same weights as an uninterrupted run."""
    full_m, part_m = _pair(5)
    full = optim.SGD(full_m.parameters(), lr=0.1, momentum=0.9)
    s_full = optim.MultiStepLR(full, milestones=[1], gamma=0.5)
    want = _run(full_m, full, s_full, 20, milestone_every=10)

    part = optim.SGD(part_m.parameters(), lr=0.1, momentum=0.9)
    s_part = optim.MultiStepLR(part, milestones=[1], gamma=0.5)
    _run(part_m, part, s_part, 10, milestone_every=10)
    opt_state, sched_state = part.state_dict(), s_part.state_dict()
    again = optim.SGD(part_m.parameters(), lr=0.1, momentum=0.9)
    s_again = optim.MultiStepLR(again, milestones=[1], gamma=0.5)
    again.load_state_dict(opt_state)
    s_again.load_state_dict(sched_state)
    assert again.param_groups[0]["lr"] == 0.05
    # the second half of the same data stream
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        torch.randn(16, 7, generator=g), torch.randint(0, 3, (16,), generator=g)
    for _ in range(10):
        again.zero_grad()
        x, y = torch.randn(16, 7, generator=g), torch.randint(0, 3, (16,), generator=g)
        torch.nn.functional.cross_entropy(part_m(x), y).backward()
        again.step()
    assert all(torch.equal(x, y) for x, y in zip(want, part_m.parameters()))


def test_another_optimizers_state_is_refused():
    m, _ = _pair()
    adam_state = optim.Adam(m.parameters(), lr=1e-3).state_dict()
    with pytest.raises(ValueError, match="another optimizer"):
        optim.SGD(m.parameters(), lr=0.1, momentum=0.9).load_state_dict(adam_state)


def test_training_does_not_import_dynamo():
    """The reason for the module: a training job never pays torch._dynamo's import."""
    import subprocess
    import sys

    code = ("import sys, torch; from sharpminima import optim; m = torch.nn.Linear(3, 2); "
            "o = optim.SGD(m.parameters(), lr=0.1, momentum=0.9); s = optim.MultiStepLR(o, [1]); "
            "m(torch.randn(4, 3)).sum().backward(); o.step(); o.zero_grad(); s.step(); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
