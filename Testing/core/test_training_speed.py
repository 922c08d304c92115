"""Issue 77: how training steps use the CPU (`orbitai.training.speed`) and batches made ahead by worker processes
(`orbitai.training.prefetch`): the same batches as made in the loop, workers gone when the loop ends early, the
layout changing no value, and the choice refused in one line when misspelt."""
from __future__ import annotations

import os
import time

import numpy as np
import psutil
import pytest
import torch

from orbitai.errors import ConfigError
from orbitai.training.prefetch import WORKERS_ENV, default_workers, fork_available, prefetched
from orbitai.training.speed import SPEED_ENV, StepSpeed, model_dims


def _make(key: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng([7, key])
    return rng.standard_normal((3, 4)).astype(np.float32), os.getpid()


def test_prefetched_batches_are_the_batches_made_in_the_loop():
    keys = list(range(9))
    inline = [_make(k)[0] for k in keys]
    made = list(prefetched(_make, keys, workers=1, depth=2))
    assert all(np.array_equal(a, b[0]) for a, b in zip(inline, made)) and len(made) == len(keys)
    if fork_available():
        assert {pid for _, pid in made} != {os.getpid()}        # made by a worker, not here


def test_a_loop_left_early_leaves_no_worker_behind():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    it = prefetched(_make, list(range(50)), workers=2, depth=2)
    next(it)
    next(it)
    it.close()
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert default_workers() == 0
    assert [b[1] for b in prefetched(_make, [1, 2])] == [os.getpid()] * 2     # 0: made here
    monkeypatch.setenv(WORKERS_ENV, "two")
    with pytest.raises(ConfigError, match="ORBITAI_PREFETCH_WORKERS='two': give a whole number"):
        default_workers()


def test_speed_choices(monkeypatch):
    monkeypatch.delenv(SPEED_ENV, raising=False)
    assert StepSpeed.auto("cpu") == StepSpeed(channels_last=True, bf16=False)
    assert StepSpeed.auto("cpu", "plain") == StepSpeed()
    monkeypatch.setenv(SPEED_ENV, "plain")
    assert StepSpeed.auto("cpu") == StepSpeed()
    assert StepSpeed.auto("cpu", "bf16").channels_last
    monkeypatch.setenv(SPEED_ENV, "fastest")
    with pytest.raises(ConfigError, match="training speed 'fastest': use one of auto, bf16, compiled, plain"):
        StepSpeed.auto("cpu")


@pytest.mark.parametrize("dims", [2, 3])
def test_the_channels_last_layout_changes_no_value_and_releases_to_the_usual_one(dims):
    conv = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[dims]
    torch.manual_seed(0)
    model = torch.nn.Sequential(conv(1, 6, 3, padding=1), torch.nn.ReLU(), conv(6, 2, 1))
    x = torch.randn(2, 1, *([8] * dims))
    expected = model(x)
    speed = StepSpeed(channels_last=True)
    params = list(model.parameters())
    net = speed.model(model, model_dims(model))
    assert list(model.parameters()) == params and net is model      # in place: an optimiser keeps its parameters
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    torch.testing.assert_close(net(speed.inputs(x)), expected, rtol=1e-5, atol=1e-6)
    speed.release(model)
    assert all(p.is_contiguous() for p in model.parameters())


def test_the_cores_are_split_by_the_synthesis_share_and_given_back(monkeypatch):
    from orbitai.training.prefetch import core_split, split_cores

    assert core_split(0.46, 2) == (1, 2)        # the lesion trainer: synthesis-heavy
    assert core_split(0.1, 2) == (2, 1)         # the SV-nets: network-heavy
    assert core_split(0.1, 1) == (1, 1) and core_split(0.46, 16) == (9, 15)
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with split_cores(0.46) as workers:
            assert (torch.get_num_threads(), workers) == (1, 2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_workers_that_their_pool_ends_leave_no_traceback(capfd):
    # a forked worker inherited the command's cancel handler: the pool's SIGTERM at its end printed a
    # KeyboardInterrupt traceback per worker into the training log
    import multiprocessing

    from orbitai.progress import cancel_on_signals
    from orbitai.training.prefetch import one_thread

    if not fork_available():
        pytest.skip("no fork on this platform")
    with cancel_on_signals():
        with multiprocessing.get_context("fork").Pool(2, initializer=one_thread) as procs:
            assert sorted(procs.map(abs, [-1, -2])) == [1, 2]
            procs.map_async(time.sleep, [30, 30])       # busy when the pool ends, as on a cancel or an error
            time.sleep(1.0)
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err


def test_compiled_steps_need_a_cxx_compiler_and_step_uncompiled_without_one(monkeypatch):
    """``compiled``: bf16 (where native) with the step compiled, but only where inductor can build its CPU kernels;
    without a C++ compiler the step is the network itself, with a warning."""
    import orbitai.training.speed as S

    monkeypatch.setattr(S.shutil, "which", lambda name: None)
    speed = StepSpeed.auto("cpu", "compiled")
    assert speed.channels_last and not speed.compile
    net = torch.nn.Conv2d(1, 2, 3)
    assert speed.stepping(net) is net
    monkeypatch.setattr(S.shutil, "which", lambda name: "/usr/bin/g++")
    speed = StepSpeed.auto("cpu", "compiled")
    assert speed.compile and speed.bf16 == S.native_bf16(torch.device("cpu"))
    assert speed.describe()["compile"] is True


def test_a_compiled_step_suppresses_compiler_errors_during_its_calls_only(monkeypatch):
    """The step's network runs with dynamo's ``suppress_errors`` on (a graph inductor cannot take runs eagerly); the
    process's own setting is the same before, between and after the calls."""
    import torch._dynamo

    seen: list[bool] = []

    def compile_(net):                     # what torch.compile returns, minus the compiling: a recording call
        def call(*args):
            seen.append(torch._dynamo.config.suppress_errors)
            return net(*args)
        return call

    monkeypatch.setattr(torch, "compile", compile_)
    before = torch._dynamo.config.suppress_errors
    net = torch.nn.Conv2d(1, 2, 3)
    step = StepSpeed(compile=True).stepping(net)
    assert torch._dynamo.config.suppress_errors == before
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(step(x), net(x))
    step.train()
    assert seen == [True] and torch._dynamo.config.suppress_errors == before and net.training


@pytest.mark.slow   # inductor compiles C++ kernels: tens of seconds on a fresh machine
def test_a_compiled_step_gives_the_networks_values_and_gradients(monkeypatch, request):
    import locale
    import shutil

    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no C++ compiler")
    # inductor reads its kernel templates in the locale's encoding: in a full slow-suite run an earlier test of the
    # same worker process left LC_CTYPE at "C" (ASCII), and the import of inductor failed on a UTF-8 template
    if locale.getpreferredencoding(False).lower().replace("-", "") != "utf8":
        before = locale.setlocale(locale.LC_CTYPE)
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
        request.addfinalizer(lambda: locale.setlocale(locale.LC_CTYPE, before))
    torch.manual_seed(0)
    # no bias before the batch norm (as in the SV-net): its gradient is zero up to rounding, compared to nothing
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1, bias=False), torch.nn.BatchNorm3d(4), torch.nn.ReLU(),
                                torch.nn.Conv3d(4, 2, 1))
    x = torch.randn(2, 1, 8, 8, 8)
    expected = model(x)
    expected.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    speed = StepSpeed(channels_last=True, compile=True)
    speed.model(model, 3)
    got = speed.stepping(model)(speed.inputs(x))
    got.sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-4 * float(g.abs().max()))
