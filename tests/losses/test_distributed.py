"""Group DRO and GroupAccuracy under torch.distributed: collectives only when asked for.

With ``sync_processes=True``, 2 CPU processes (gloo) match one process on both batches; by
default, an initialized process group is left alone.
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robustml.losses import GroupDROLoss
from robustml.metrics import GroupAccuracy
from robustml.train import distributed

WORLD_SIZE = 2
NUM_GROUPS = 3
OPTIONS = {"step_size": 0.8, "group_counts": [50, 20, 5], "adjustment": 1.0}


def make_rank_batches():
    """Two steps of different data per rank; group 2 is on rank 1 at step 0, nowhere at step 1."""
    generator = torch.Generator().manual_seed(0)
    groups = [[torch.tensor([0, 0, 1, 0, 1]), torch.tensor([1, 2, 2, 0, 0, 0, 1])],
              [torch.tensor([0, 1, 1, 1, 0, 0]), torch.tensor([0, 0, 0, 1])]]
    batches = []
    for rank_groups in groups:
        rank_batches = []
        for g in rank_groups:
            logits = 2 * torch.randn(len(g), 3, generator=generator, dtype=torch.float64)
            rank_batches.append((logits, torch.randint(0, 3, (len(g),), generator=generator), g))
        batches.append(rank_batches)
    return batches


def run_rank(rank, init_file, out_dir, batches):
    """Train the loss on this rank's batches; save losses, logit gradients and q per step."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD_SIZE)
    try:
        criterion = GroupDROLoss(NUM_GROUPS, sync_processes=True, **OPTIONS).double()
        results = []
        for logits, target, groups in batches[rank][0], batches[rank][1]:
            logits = logits.clone().requires_grad_(True)
            loss = criterion(logits, target, groups)
            loss.backward()
            results.append((loss.detach(), logits.grad, criterion.q.clone()))
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_on_concatenated_batches(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    batches = make_rank_batches()
    mp.spawn(run_rank, args=(str(tmp_path / "init"), str(tmp_path), batches),
             nprocs=WORLD_SIZE, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]

    single = GroupDROLoss(NUM_GROUPS, **OPTIONS).double()
    for step in range(2):
        parts = [batches[r][step] for r in range(WORLD_SIZE)]
        logits = torch.cat([p[0] for p in parts]).requires_grad_(True)
        loss = single(logits, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]))
        loss.backward()
        (_, _, q0), (_, _, q1) = results[0][step], results[1][step]
        assert torch.equal(q0, q1)
        torch.testing.assert_close(q0, single.q, rtol=1e-12, atol=0)
        # DDP averages gradients over ranks: the mean of the rank losses is the global loss and
        # each rank's logit gradient / world size is the global gradient on its examples.
        mean_loss = sum(results[r][step][0] for r in range(WORLD_SIZE)) / WORLD_SIZE
        torch.testing.assert_close(mean_loss, loss.detach(), rtol=1e-12, atol=0)
        rank_grads = torch.cat([results[r][step][1] for r in range(WORLD_SIZE)]) / WORLD_SIZE
        torch.testing.assert_close(rank_grads, logits.grad, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(single.q, torch.full((3,), 1 / 3, dtype=torch.float64))


@pytest.fixture
def one_process_group(tmp_path, monkeypatch):
    """An initialized 1-process gloo group whose all-reduces are recorded (and still run)."""
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    calls = []
    all_reduce = dist.all_reduce

    def recording(tensor, *args, **kwargs):
        calls.append(tensor.shape)
        return all_reduce(tensor, *args, **kwargs)

    monkeypatch.setattr(dist, "all_reduce", recording)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0,
                            world_size=1)
    try:
        yield calls
    finally:
        dist.destroy_process_group()


def test_group_dro_all_reduces_only_with_sync_processes(one_process_group):
    logits, target, groups = make_rank_batches()[0][0]
    local, synced = (GroupDROLoss(NUM_GROUPS, sync_processes=sync, **OPTIONS).double()
                     for sync in (False, True))
    loss = local(logits, target, groups)
    assert one_process_group == []
    torch.testing.assert_close(synced(logits, target, groups), loss, rtol=0, atol=0)
    assert one_process_group == [(2, NUM_GROUPS)]
    assert torch.equal(synced.q, local.q)


def test_group_accuracy_all_reduces_only_with_sync_processes(one_process_group):
    _, target, groups = make_rank_batches()[0][0]
    local, synced = (GroupAccuracy(NUM_GROUPS, sync_processes=sync) for sync in (False, True))
    for meter in local, synced:
        meter.update(torch.zeros_like(target), target, groups)
    result = local.compute()
    assert one_process_group == []
    assert synced.compute() == pytest.approx(result, nan_ok=True)
    assert one_process_group == [(2, NUM_GROUPS)]


def test_training_on_several_processes_refuses_group_dro_without_sync_processes(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="needs sync_processes=True"):
        distributed.check_distributable(GroupDROLoss(NUM_GROUPS))
    distributed.check_distributable(GroupDROLoss(NUM_GROUPS, sync_processes=True))
