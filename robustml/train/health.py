"""Health checks of a training run (see :mod:`robustml.health`): did the model learn, did it learn
the shortcut, and can the selection be trusted. Pure functions of the trainer's history, its
settings and the final metrics; messages name the engine's arguments (the config layer
translates them)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from robustml.data.contract import GroupedDataset
from robustml.health import Finding, Thresholds


def chance_loss(target: torch.Tensor, num_classes: int) -> float:
    """Return the loss of a model that predicts the label prior: its entropy in nats."""
    prior = torch.bincount(target.cpu(), minlength=num_classes).double()
    prior = prior[prior > 0] / prior.sum()
    return float(-(prior * prior.log()).sum())


def counterfactual_coverage(covered: int, total: int, *, thresholds: Thresholds) -> list[Finding]:
    """Fire when counterfactual augmentation can change fewer than ``cf_min_coverage`` of the
    ``total`` training examples (``covered`` have a counterfactual): the run is nearly plain training."""
    if total == 0 or covered >= thresholds.cf_min_coverage * total:
        return []
    return [Finding("counterfactual_coverage", 2,
                    f"counterfactual augmentation changed little: only {covered} of {total} training "
                    f"examples ({covered / total:.1%}) have a counterfactual (for text: mention a word of "
                    "the lexicon), so the run is nearly training without it; use a lexicon whose words "
                    "the texts contain (data.counterfactual_lexicon, or data.source.counterfactual_lexicon "
                    "with data=features)")]


def not_learning(history: Sequence[Mapping[str, Any]], *, chance: float, max_steps: int,
                 l2_weight: float, lr: float, thresholds: Thresholds) -> list[Finding]:
    """Fire when every training loss logged from a tenth of the run on is within
    ``chance_margin`` of ``chance`` (or above it): the model is not learning."""
    late = [record for record in history if record["step"] >= max(1, max_steps // 10)]
    if not late or chance <= 0:
        return []
    lowest = min(float(record["train/loss"]) for record in late)
    if lowest < (1 - thresholds.chance_margin) * chance:
        return []
    rates = f"l2_weight=0 (now {l2_weight:g}) or lr={3 * lr:g}" if l2_weight else f"lr={3 * lr:g}"
    hint = f"try {rates}, or a longer run (max_steps={4 * max_steps}) if the loss was still falling"
    return [Finding("not_learning", 3,
                    f"not learning: the training loss stayed at {lowest:.3f} or above from step "
                    f"{late[0]['step']} on, within {thresholds.chance_margin:.0%} of chance "
                    f"({chance:.3f}, the label prior's entropy); {hint}")]


REMEDIES = ("loss=group_dro", "method=jtt", "method=dfr")


def shortcut_learned(final: Mapping[str, Any], group_names: Sequence[str], *, thresholds: Thresholds,
                     in_use: Sequence[str] = ()) -> list[Finding]:
    """Fire when the selected model's val worst-group accuracy is far below its val train-mix
    average: it still follows the shortcut where the training mix rewards it. The hint names the
    :data:`REMEDIES` not ``in_use`` by this run."""
    worst, mix = final.get("val/acc_worst_group"), final.get("val/acc_weighted_avg")
    if worst is None or mix is None or math.isnan(worst) or mix - worst < thresholds.shortcut_gap:
        return []
    g = int(final.get("val/worst_group", -1))
    name = f" (group {g}, {group_names[g]})" if 0 <= g < len(group_names) else ""
    return [Finding("shortcut_learned", 2,
                    f"shortcut still learned: val worst-group accuracy {100 * worst:.1f}%{name} is "
                    f"{100 * (mix - worst):.0f} points below the train-mix average "
                    f"({100 * mix:.1f}%); the per-group table shows which attribute the model "
                    f"follows; {_remedy_hint([r for r in REMEDIES if r not in in_use])}")]


def _remedy_hint(remedies: Sequence[str]) -> str:
    if not remedies:
        return "tune this run's remedy or combine it with another"
    listed = remedies[0] if len(remedies) == 1 else ", ".join(remedies[:-1]) + " or " + remedies[-1]
    return f"try {'a remedy' if len(remedies) == len(REMEDIES) else 'another remedy'}: {listed}"


def selection(history: Sequence[Mapping[str, Any]], best_step: int, final: Mapping[str, Any],
              group_names: Sequence[str], *, select: str, thresholds: Thresholds) -> list[Finding]:
    """Fire when the selected step is the first evaluation of several, and for each validation
    group too small for its accuracy to mean much (with its 95% binomial interval)."""
    findings = []
    if len(history) > 1 and select != "last" and best_step == history[0]["step"]:
        findings.append(Finding(
            "selected_first_evaluation", 2,
            f"the selected step is the first evaluation (step {best_step} of "
            f"{history[-1]['step']}): by {select!r} on val every later step was worse; try a "
            f"smaller lr or eval_every={max(1, best_step // 5)}"))
    small = []
    for g, name in enumerate(group_names):
        count, acc = final.get(f"val/count_group_{g}"), final.get(f"val/acc_group_{g}")
        if count is None or not 0 < int(count) < thresholds.min_val_group or acc is None:
            continue
        from scipy.stats import binomtest  # scipy: only when a group is small
        k, n = round(float(acc) * int(count)), int(count)
        low, high = binomtest(k, n).proportion_ci(confidence_level=0.95)
        small.append(f"group {g} ({name}): {n} examples, {100 * acc:.0f}% "
                     f"[95% interval {100 * low:.0f}-{100 * high:.0f}%]")
    if small:
        findings.append(Finding(
            "small_val_group", 1,
            f"validation groups below {thresholds.min_val_group} examples, their accuracy is "
            f"noise: {'; '.join(small)}; a larger validation split makes selection reliable"))
    return findings


def group_dro_weights(history: Sequence[Mapping[str, Any]], *, num_groups: int, step_size: float,
                      thresholds: Thresholds) -> list[Finding]:
    """Fire when Group DRO's logged ``q`` never left a neighbourhood of uniform (its step size is
    too small for the run), or put almost all weight on one group from the first half on."""
    qs = [[float(record[f"train/q_{g}"]) for g in range(num_groups)] for record in history
          if "train/q_0" in record]
    if not qs or num_groups < 2:
        return []
    if all(abs(q - 1 / num_groups) <= thresholds.q_uniform_tolerance for row in qs for q in row):
        return [Finding("group_dro_q_frozen", 2,
                        f"Group DRO's weights q stayed within {thresholds.q_uniform_tolerance:g} of "
                        f"uniform ({1 / num_groups:.3f}) all run: it behaved like ERM; raise "
                        f"step_size={10 * step_size:g}")]
    second_half = qs[len(qs) // 2:]
    top = [max(range(num_groups), key=row.__getitem__) for row in second_half]
    if len(set(top)) == 1 and all(row[top[0]] >= thresholds.q_collapse for row in second_half):
        return [Finding("group_dro_q_collapsed", 1,
                        f"Group DRO put >= {thresholds.q_collapse:.0%} of its weight on group "
                        f"{top[0]} from the middle of the run on: the other groups barely train; "
                        f"try step_size={step_size / 10:g}")]
    return []


def label_counts(splits: Iterable[tuple[str, GroupedDataset]],
                 names: Sequence[str] = ("val", "test")) -> dict[str, list[int]]:
    """Return ``{split: examples per class}`` of the splits ``names`` among ``splits``'s
    ``(name, dataset)`` pairs (what :func:`one_class_predictor` compares the predictions with)."""
    return {name: torch.bincount(split.y.cpu(), minlength=split.num_classes).tolist()
            for name, split in splits if name in names}


def one_class_predictor(final: Mapping[str, Any], label_counts: Mapping[str, Sequence[int]],
                        class_names: Sequence[str], *, thresholds: Thresholds, hint: str,
                        model: str = "the selected model") -> list[Finding]:
    """Fire when ``model`` predicts one class for at least ``one_class_share`` of a split's
    examples (val or test) while that class is less than ``one_class_label_share`` of them.

    Args:
        final: The final metrics, with ``{split}/pred_share_<c>`` (see
            :func:`robustml.metrics.prediction_shares`).
        label_counts: ``{split: examples per class}`` of the splits to check.
        class_names: Names of the classes, for the message.
        thresholds: The thresholds.
        hint: What to change, for the message (the caller knows the settings).
        model: What predicted, for the message (DFR's last layer names itself).
    """
    found = []
    for split, counts in label_counts.items():
        total = sum(counts)
        shares = [final.get(f"{split}/pred_share_{c}") for c in range(len(counts))]
        if not total or any(share is None for share in shares):
            continue
        top = max(range(len(shares)), key=shares.__getitem__)
        label_share = counts[top] / total
        if shares[top] >= thresholds.one_class_share and label_share < thresholds.one_class_label_share:
            found.append(f"class {class_names[top]} for {100 * shares[top]:.1f}% of {split} examples, "
                         f"while it is {100 * label_share:.1f}% of them")
    if not found:
        return []
    return [Finding("one_class_predictor", 3,
                    f"one-class predictor: {model} predicts {'; '.join(found)}: {hint}")]
