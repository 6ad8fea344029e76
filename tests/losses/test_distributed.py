"""Group DRO under torch.distributed: 2 CPU processes (gloo) match one process on both batches."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robustml.losses import GroupDROLoss

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
        criterion = GroupDROLoss(NUM_GROUPS, **OPTIONS).double()
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
