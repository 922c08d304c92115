"""A check of `orbitai.training.distributed` on a real process group (gloo, CPU) for the tests: one training step of a
small network with batch norm and dropout, shared unevenly by the ranks, against the same step on one process."""
from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 7   # uneven on two ranks (4 + 3): the loss weighting must count


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.4), nn.Linear(4 * 6 * 6, 3), nn.BatchNorm1d(3))


def _step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    torch.manual_seed(5)     # the dropout masks
    out = net(x)
    (F.cross_entropy(out, y, reduction="sum") / len(y) * weight).backward()
    return out.detach()


def one_step_check(rank: int, world: int, port: int, global_layers: bool) -> None:
    """Run as rank ``rank`` of ``world`` (torch.multiprocessing.spawn). With ``global_layers`` (`orbitai.training.distributed.wrap`)
    this rank's outputs, every gradient and the running statistics equal the one-process step to 1e-5; without
    (plain DDP: each rank's own batch statistics and dropout masks) they must not, or the check could not fail."""
    import torch.distributed as dist

    from orbitai.training import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(BATCH, 2, 6, 6, generator=g), torch.randint(0, 3, (BATCH,), generator=g)
    ref = _net().train()
    ref_out = _step(ref, x, y)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        net = _net().train()
        mine = distributed.local_slice(list(range(BATCH)))
        weight = distributed.loss_weight(len(mine), BATCH)
        if global_layers:
            with distributed.wrap(net, "cpu") as ddp:
                assert ddp is not net
                out = _step(ddp, x[mine], y[mine], weight)
            assert isinstance(net[1], nn.BatchNorm2d) and type(net[4]) is nn.Dropout   # its own layers back
        else:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(net)
            out = _step(ddp, x[mine], y[mine], weight)
            del ddp
        gaps = [float((out - ref_out[mine]).abs().max())]
        gaps += [float((p.grad - q.grad).abs().max()) for p, q in zip(net.parameters(), ref.parameters())
                 if p.grad is not None and q.grad is not None]
        gaps += [float((a - b).abs().max()) for (n, a), (_, b) in zip(net.state_dict().items(), ref.state_dict().items())
                 if n.endswith(("running_mean", "running_var"))]
        if global_layers:
            assert max(gaps) < 1e-5, f"rank {rank}: off the one-process step by {max(gaps):.3g}"
        else:
            assert max(gaps) > 1e-3, f"rank {rank}: plain DDP matched the one-process step ({max(gaps):.3g})"
        dist.barrier()   # no rank leaves the group while another still talks to it
    finally:
        dist.destroy_process_group()
