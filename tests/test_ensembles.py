"""Ensembles: the votes against hand computations, members' seeds, Cancel, and the `ensemble` command."""

import json

import pytest
import torch

from engine.__main__ import main
from engine.data.subsample import subsample
from engine.errors import UserInputError
from engine.limits import MAX_ENSEMBLE_MEMBERS, MAX_TRAIN_SECONDS
from engine.training import ensembles
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer, predict


@pytest.fixture(scope="module")
def tiny_digits(digits):
    return subsample(digits, per_class=8, seed=0)


def _members(k=3, names=("tinyvgg",), epochs=1, seed=0):
    config = TrainConfig(model=names[0], epochs=epochs, batch_size=16, seed=seed)
    return ensembles.plan_members(config, model_names=list(names), members=k)


def test_hard_vote_is_the_majority_and_ties_go_to_the_soft_vote():
    # image 0: votes 0, 0, 1, 1 (a tie) and the mean probability prefers 1;
    # image 1: votes 2, 2, 2, 0 while the mean probability prefers 0: the majority wins.
    probs = torch.tensor([
        [[0.6, 0.4, 0.0], [0.44, 0.1, 0.46]],
        [[0.5, 0.3, 0.2], [0.44, 0.1, 0.46]],
        [[0.1, 0.9, 0.0], [0.44, 0.1, 0.46]],
        [[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]],
    ])
    assert ensembles.hard_vote(probs).tolist() == [1, 2]
    assert ensembles.soft_vote(probs).argmax(1).tolist() == [1, 0]
    torch.testing.assert_close(ensembles.soft_vote(probs)[0], torch.tensor([0.375, 0.575, 0.05]))


def test_summary_vs_k_and_disagreements_by_hand():
    # 3 members, 4 images, 2 classes, labels 0, 1, 1, 0; each member's probability of class 1 per image
    labels = torch.tensor([0, 1, 1, 0])
    class_1 = torch.tensor([[0.55, 0.9, 0.4, 0.6], [0.6, 0.4, 0.7, 0.1], [0.0, 0.6, 0.8, 0.3]])
    probs = torch.stack([1 - class_1, class_1], dim=2)  # (M, N, K)
    summary = ensembles.summarize(probs, labels)
    assert summary.member_votes.tolist() == [[1, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]]
    assert summary.member_acc == [0.25, 0.5, 1.0]
    # mean probabilities of class 1: 0.383, 0.633, 0.633, 0.333 → all right; the majority gets image 0 wrong
    assert summary.soft_pred.tolist() == [0, 1, 1, 0] and summary.soft_vote == 1.0
    assert summary.hard_pred.tolist() == [1, 1, 1, 0] and summary.hard_vote == 0.75
    # the first two members: means 0.575, 0.65, 0.55, 0.35; their ties (images 1–3) go to the soft vote
    assert summary.vs_k == [{"k": 1, "soft_vote": 0.25, "hard_vote": 0.25}, {"k": 2, "soft_vote": 0.75, "hard_vote": 0.75},
                            {"k": 3, "soft_vote": 1.0, "hard_vote": 0.75}]
    # every image splits the members and the ensemble gets it right; image 0 (two members wrong) first
    assert summary.disagreements == [0, 1, 2, 3]
    assert ensembles.disagreement_indices(summary.member_votes, summary.hard_pred, labels) == [1, 2, 3]


def test_plan_gives_seeds_s_plus_one_to_s_plus_k_and_cycles_models():
    planned = _members(k=5, names=("tinyvgg", "mlp"), seed=7)
    assert [m.config.seed for m in planned] == [8, 9, 10, 11, 12]
    assert [m.config.model for m in planned] == ["tinyvgg", "mlp", "tinyvgg", "mlp", "tinyvgg"]
    assert len({m.name for m in planned}) == 5


@pytest.mark.parametrize(("k", "names", "match"), [(0, ["tinyvgg"], "1 to"), (MAX_ENSEMBLE_MEMBERS + 1, ["tinyvgg"], "1 to"),
                                                   (3, [], "at least one model"), (3, ["nope"], "unknown model")])
def test_bad_plans_are_user_errors(k, names, match):
    with pytest.raises(UserInputError, match=match):
        ensembles.plan_members(TrainConfig(), model_names=names, members=k)


def test_over_the_time_limit_is_refused():
    with pytest.raises(UserInputError, match="over the"):
        ensembles.check_time(MAX_TRAIN_SECONDS + 1)


def test_member_probabilities_are_the_members_own_and_soft_vote_is_their_mean(tiny_digits):
    planned = _members(k=2)
    results = [e for e in ensembles.train_ensemble(members=planned, dataset=tiny_digits)
               if isinstance(e, ensembles.MemberResult)]
    assert [r.seed for r in results] == [1, 2]
    # the same member trained again on its own gives the same probabilities (each run owns its randomness)
    again = Trainer(planned[1].config, tiny_digits)
    again.fit()
    torch.testing.assert_close(results[1].probs, predict(again.model, tiny_digits.test.x))
    assert results[1].test_acc == pytest.approx(again.history.test_acc)
    probs = torch.stack([r.probs for r in results])
    mean = (results[0].probs + results[1].probs) / 2
    torch.testing.assert_close(ensembles.soft_vote(probs), mean)
    summary = ensembles.summarize(probs, tiny_digits.test.y)
    assert summary.soft_vote == pytest.approx(float((mean.argmax(1) == tiny_digits.test.y).float().mean()))
    assert summary.member_acc == pytest.approx([r.test_acc for r in results])


def test_cancel_keeps_the_finished_members(tiny_digits):
    seen = []
    stop = lambda: len(seen) >= 1  # noqa: E731  cancel once the first member is in
    for event in ensembles.train_ensemble(stop, members=_members(k=3), dataset=tiny_digits):
        if isinstance(event, ensembles.MemberResult):
            seen.append(event)
    assert len(seen) == 1 and seen[0].index == 0


def test_cli_prints_members_votes_and_vs_k(capsys):
    code = main(["ensemble", "--data", "digits", "--model", "linear", "--members", "3", "--epochs", "1",
                 "--per-class", "5", "--seed", "2", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [m["seed"] for m in result["members"]] == [3, 4, 5]
    assert all(0 <= m["test_acc"] <= 1 for m in result["members"])
    assert [row["k"] for row in result["vs_k"]] == [1, 2, 3]
    assert result["vs_k"][0]["soft_vote"] == pytest.approx(result["members"][0]["test_acc"], abs=1e-6)
    assert result["vs_k"][-1]["soft_vote"] == pytest.approx(result["soft_vote"])
    assert 0 <= result["hard_vote"] <= 1 and result["seconds"] > 0


@pytest.mark.parametrize("argv", [["--members", "0"], ["--members", "11"], ["--model", "nope"],
                                  ["--per-class", "0"], ["--epochs", "0"], ["--data", "missing.zip"]])
def test_cli_bad_input_exits_2_with_one_line(capsys, argv):
    assert main(["ensemble", "--model", "linear", "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
