"""The trainer's DataLoader path for on-disk data: reproducible order, exact mid-epoch resume."""

import pytest
import torch

from robustml.data import GroupedTensorDataset, InMemoryRequired
from robustml.data.datasets import image_csv_splits
from robustml.data.datasets.example_files import write_image_csv
from robustml.data.samplers import EpochBatchSampler
from robustml.losses import ERMLoss
from robustml.models import SmallCNN
from robustml.train import Trainer, TrainSettings
from robustml.train.evaluate import evaluate


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    csv = write_image_csv(tmp_path_factory.mktemp("images"), per_group=6, split_column=True,
                          size=(24, 24))
    return image_csv_splits(csv, image_size=12, augment=True)  # train: 16 images (4 per group)


def _trainer(splits, run_dir, **settings):
    torch.manual_seed(0)
    model = SmallCNN((3, 12, 12), 1, channels=(4, 4, 4))
    defaults = dict(max_steps=6, batch_size=5, eval_every=3, progress=False, seed=1)
    defaults.update(settings)
    trainer = Trainer(model, ERMLoss(4), torch.optim.SGD(model.parameters(), lr=0.1),
                      splits.train, splits.val, TrainSettings(**defaults), run_dir=run_dir)
    seen = []
    step = trainer._train_step

    def recording_step(batch):
        seen.append((batch["index"].tolist(), batch["x"].clone()))
        return step(batch)

    trainer._train_step = recording_step
    return trainer, seen


def test_sampler_covers_each_epoch_once_and_restarts_from_a_position():
    sampler = iter(EpochBatchSampler(7, batch_size=3, seed=2))
    epoch0 = [next(sampler) for _ in range(3)]
    assert sorted(i for batch in epoch0 for i, _ in batch) == list(range(7))
    assert [len(b) for b in epoch0] == [3, 3, 1]
    later = [next(sampler) for _ in range(4)]
    resumed = iter(EpochBatchSampler(7, batch_size=3, seed=2, start_epoch=1, start_batch=1))
    assert [next(resumed) for _ in range(3)] == later[1:]
    seeds = [s for batch in epoch0 + later for _, s in batch]
    assert len(set(seeds)) == len(seeds)  # one transform seed per (epoch, position)


def test_resume_mid_epoch_sees_the_same_remaining_batches(splits, tmp_path):
    straight, seen_straight = _trainer(splits, tmp_path / "a", max_steps=9)
    straight.fit()
    first, _ = _trainer(splits, tmp_path / "b", max_steps=6, eval_every=6)   # 4 batches per epoch
    first.fit()
    assert first.position == (1, 2)                                           # stopped mid-epoch
    resumed, seen_resumed = _trainer(splits, tmp_path / "b", max_steps=9, resume=True)
    resumed.fit()
    assert len(seen_resumed) == 3
    assert [idx for idx, _ in seen_resumed] == [idx for idx, _ in seen_straight[6:]]
    for (_, a), (_, b) in zip(seen_resumed, seen_straight[6:]):
        torch.testing.assert_close(a, b)   # same random crops and flips, too
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)


def test_workers_give_the_same_batches_as_the_main_process(splits, tmp_path):
    main, seen_main = _trainer(splits, tmp_path / "a", max_steps=3, eval_every=3)
    main.fit()
    workers, seen_workers = _trainer(splits, tmp_path / "b", max_steps=3, eval_every=3, num_workers=2,
                                     persistent_workers=True)
    workers.fit()
    assert [i for i, _ in seen_workers] == [i for i, _ in seen_main]
    for (_, a), (_, b) in zip(seen_workers, seen_main):
        torch.testing.assert_close(a, b)


def test_batches_and_weights_are_on_the_training_device(splits, tmp_path):
    trainer, seen = _trainer(splits, tmp_path, max_steps=1, eval_every=1)
    trainer.batches.sample_weights = torch.arange(len(splits.train), dtype=torch.float32,
                                                  device=trainer.device)
    batch = next(trainer.batches)
    assert {value.device for value in batch.values()} == {trainer.device}
    torch.testing.assert_close(batch["weight"], batch["index"].float())  # each example's own weight


def test_streamed_evaluation_equals_evaluation_in_memory(splits):
    test = splits.test
    in_memory = GroupedTensorDataset(torch.stack([test[i]["x"] for i in range(len(test))]), test.y,
                                     test.attr, num_classes=2, attr_names=test.attr_names,
                                     attr_key=test.attr_key, class_names=test.class_names)
    model = SmallCNN((3, 12, 12), 2, channels=(4, 4, 4))
    assert evaluate(model, test, prefix="test") == evaluate(model, in_memory, prefix="test")


def test_full_batch_on_disk_names_the_dataset_and_the_fix(splits, tmp_path):
    with pytest.raises(InMemoryRequired, match="full-batch protocol.*'images'.*set batch_size"):
        _trainer(splits, tmp_path, batch_size=None)


@pytest.mark.parametrize("eval_train, with_train", [("auto", [False, True]), ("every", [True, True]),
                                                    ("last", [False, True])])
def test_on_disk_data_evaluates_the_training_split_at_the_end_by_default(splits, tmp_path, eval_train,
                                                                         with_train):
    trainer, _ = _trainer(splits, tmp_path, eval_train=eval_train)  # evaluations at steps 3 and 6
    history = trainer.fit()["history"]
    assert [any(key.startswith("train/acc") for key in record) for record in history] == with_train
    from support import compose_train
    assert TrainSettings(max_steps=1).eval_train == "auto" == compose_train([]).trainer.eval_train


@pytest.mark.parametrize("field,value", [("num_workers", -1), ("persistent_workers", True),
                                         ("eval_batch_size", 0)])
def test_bad_loader_settings_are_named(field, value):
    with pytest.raises(ValueError, match=f"^{field}"):
        TrainSettings(max_steps=1, **{field: value})


@pytest.mark.parametrize("sampler", ["group_balanced", "reweight"])
def test_own_image_csv_trains_from_config_with_group_sampling(sampler, tmp_path):
    from support import compose_train
    from robustml.pipeline.run import run

    csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
    cfg = compose_train(["data=image_csv", f"data.csv={csv}", "data.image_size=8", "model=cnn",
                         "model.channels=[2,2,2]", f"sampler={sampler}", "trainer.batch_size=4",
                         "trainer.max_steps=3", "trainer.eval_every=3", "trainer.progress=false",
                         "trainer.device=cpu"])
    final = run(cfg, run_dir=tmp_path / "run")
    assert final["steps"] == 3 and final["test/count_group_3"] == 1
    assert f"{sampler} sampling used group labels" in (tmp_path / "run" / "report.md").read_text()
