"""Group inference: each method recovers planted groups; agreement and selection metrics by hand."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from planted import planted
from robustml.groups import (InferredGroups, cluster_within_classes, eiil_environments, error_split,
                             partition_agreement, selection_metrics)
from robustml.groups.eiil import eiil_penalty
from robustml.losses import scale_gradients


def test_error_split_by_hand():
    preds, y = torch.tensor([0, 1, 1, 0, 2]), torch.tensor([0, 0, 1, 1, 2])
    assert error_split(preds, y, num_classes=3).tolist() == [0, 1, 2, 3, 4]


def test_error_split_recovers_the_groups_where_the_reference_learned_the_shortcut():
    data = planted()
    parts = error_split(data["preds"], torch.tensor(data["y"]), num_classes=2).numpy()
    # Parts 2y + wrong; wrong marks the examples whose spurious value disagrees with the label.
    assert adjusted_rand_score(data["y"] * 2 + data["minority"], parts) > 0.8


def test_scale_gradients_match_autograd_of_the_loss_with_respect_to_a_logit_scale():
    torch.manual_seed(0)
    for logits, y in ((torch.randn(7, 1), torch.randint(0, 2, (7,))), (torch.randn(7, 3), torch.randint(0, 3, (7,)))):
        scale = torch.ones((), requires_grad=True)
        if logits.shape[1] == 1:
            losses = torch.nn.functional.binary_cross_entropy_with_logits(scale * logits[:, 0], y.float(),
                                                                          reduction="none")
        else:
            losses = torch.nn.functional.cross_entropy(scale * logits, y, reduction="none")
        grads = torch.stack([torch.autograd.grad(l, scale, retain_graph=True)[0] for l in losses])
        assert torch.allclose(scale_gradients(logits, y), grads, atol=1e-6)


def test_eiil_separates_the_examples_where_the_spurious_feature_disagrees():
    data = planted()
    result = eiil_environments(data["logits"], torch.tensor(data["y"]), num_steps=2000, lr=0.01)
    assert adjusted_rand_score(data["minority"], result.env.numpy()) > 0.5
    # The inferred split violates invariance far more than a random one (the EI objective).
    r = scale_gradients(data["logits"], torch.tensor(data["y"]))
    random_env = torch.randint(0, 2, (len(r),), generator=torch.Generator().manual_seed(0))
    assert result.penalty > 10 * float(eiil_penalty(r, (random_env == 0).float()))


def test_clustering_recovers_planted_groups_and_chooses_two_clusters_by_silhouette():
    data = planted()
    clusters = cluster_within_classes(data["features"], data["y"], num_classes=2, num_clusters=(2, 3, 4))
    assert clusters.num_clusters == [2, 2]
    parts = clusters.predict(data["features"], data["y"])
    assert adjusted_rand_score(data["group"], parts) > 0.95
    gmm = cluster_within_classes(data["features"], data["y"], num_classes=2, num_clusters=2,
                                 method="gmm")
    assert adjusted_rand_score(data["group"], gmm.predict(data["features"], data["y"])) > 0.95


@pytest.mark.parametrize("candidates", [(2, 3, 4), (4, 3, 2), (3, 4, 2)])
def test_clustering_ties_go_to_the_fewer_clusters_whatever_the_order(monkeypatch, candidates):
    import sklearn.metrics
    monkeypatch.setattr(sklearn.metrics, "silhouette_score", lambda *args, **kwargs: 0.5)  # all tie
    data = planted()
    clusters = cluster_within_classes(data["features"], data["y"], num_classes=2,
                                      num_clusters=candidates)
    assert clusters.num_clusters == [2, 2]


def test_clustering_more_clusters_than_examples_in_a_class_is_refused():
    features, y = np.random.default_rng(0).normal(size=(10, 2)), np.array([0] * 8 + [1] * 2)
    with pytest.raises(ValueError, match=r"up to 3 clusters but class 1 has 2 example\(s\).*lower num_clusters"):
        cluster_within_classes(features, y, num_classes=2, num_clusters=(2, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        cluster_within_classes(features, y, num_classes=2, num_clusters=2, method="dbscan")


def test_partition_agreement_by_hand():
    true = np.array([0, 0, 0, 1, 1, 2])
    inferred = np.array([5, 5, 7, 7, 7, 7])
    out = partition_agreement(inferred, true, num_groups=4)
    assert out["adjusted_rand"] == pytest.approx(adjusted_rand_score(true, inferred))
    assert out["purity_group_0"] == pytest.approx(1.0) and out["share_group_0"] == pytest.approx(2 / 3)
    assert out["purity_group_1"] == pytest.approx(2 / 4) and out["share_group_1"] == pytest.approx(1.0)
    assert out["purity_group_2"] == pytest.approx(1 / 4)
    assert np.isnan(out["purity_group_3"])


def test_selection_metrics_by_hand():
    preds, y = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 1, 1, 0])
    parts = InferredGroups(torch.tensor([0, 0, 1, 1, 2]), 3, ["a", "b", "c"], "error_split")
    out = selection_metrics(preds, y, num_classes=2, inferred=parts)
    assert out["acc_worst_class"] == pytest.approx(1 / 2)           # class 0: 1 of 2; class 1: 2 of 3
    assert out["acc_worst_inferred_group"] == pytest.approx(0.0)    # part 2: 0 of 1
    assert out["acc_inferred_group_0"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="names must name the 3 parts"):
        InferredGroups(torch.tensor([0]), 3, ["a"], "eiil")
