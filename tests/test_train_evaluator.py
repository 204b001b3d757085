"""The image-training evaluator (issue 19) on a tiny generated ImageFolder: it learns a separable
task, is seeded by (seed, arch) and cached, resumes a killed search by replay without retraining,
and reports a table's looked-up accuracy beside the trained one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nascore.errors import UserError
from nascore.io import read_jsonl
from nascore.spaces import get_space
from nascore.train_evaluator import ImageTrainEvaluator, Recipe

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
TINY = Recipe(epochs=4, C=4, N=1, image_size=8, subset=None, val_size=24, batch_size=16, lr=0.05)


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """2 classes of 12x12 PNGs: a red or a blue square at a random place on a noisy grey ground
    (ImageFolder layout train/<class>/<image>.png, 60 per class)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for cls, colour in (("blue", (20, 40, 230)), ("red", (230, 30, 20))):
        (root / "train" / cls).mkdir(parents=True)
        for k in range(60):
            img = rng.integers(90, 160, (12, 12, 3)).astype(np.uint8)
            y, x = rng.integers(0, 6, 2)
            img[y:y + 6, x:x + 6] = colour
            Image.fromarray(img).save(root / "train" / cls / f"{k:03d}.png")
    return root


def test_learns_separable_squares_and_reports_cost(squares):
    space = get_space("nb201")
    ev = ImageTrainEvaluator(space, squares, TINY, seed=0)
    res = ev(space.from_string(CONV))
    assert res.score >= 90 and res.metrics["valid_accuracy"] == res.score
    assert res.metrics["val_images"] == 24 and res.metrics["train_images"] == 96 and res.metrics["image_size"] == 8
    net = space.build_model(space.from_string(CONV), C=4, N=1, num_classes=2)
    assert res.metrics["params"] == sum(p.numel() for p in net.parameters())
    assert res.metrics["flops"] > 0 and res.cost > 0 and res.metrics["cpu_seconds"] > 0
    assert "test_accuracy" not in res.metrics  # no table given: nothing looked up
    # a cell that passes nothing (all edges 'none') cannot tell the classes apart: the score is not free
    blind = ev(space.from_string(NONE))
    assert blind.score <= 75


def test_seed_follows_the_architecture_and_the_cache_never_retrains(squares, tmp_path, monkeypatch):
    space = get_space("nb201")
    a = space.from_string(CONV)
    ev = ImageTrainEvaluator(space, squares, TINY, seed=3, cache_dir=tmp_path / "cache")
    first = ev(a)
    again = ImageTrainEvaluator(space, squares, TINY, seed=3)(a)  # uncached, same (seed, arch): same training
    assert again.score == first.score and again.metrics["seed"] == first.metrics["seed"]
    other = ImageTrainEvaluator(space, squares, TINY, seed=4)(a)
    assert other.metrics["seed"] != first.metrics["seed"]

    def boom(self, arch):
        raise AssertionError("retrained a cached candidate")

    monkeypatch.setattr(ImageTrainEvaluator, "evaluate", boom)
    hit = ImageTrainEvaluator(space, squares, TINY, seed=3, cache_dir=tmp_path / "cache")(a)
    assert hit.score == first.score and hit.metrics["cached"] is True
    with pytest.raises(AssertionError):  # another fidelity is another cache entry: it would train
        ImageTrainEvaluator(space, squares, TINY, seed=3, cache_dir=tmp_path / "cache")(a, fidelity=2)


def test_killed_search_resumes_by_replay_without_retraining(squares, tmp_path, monkeypatch):
    from nascore.train_search import train_search

    calls = []
    real = ImageTrainEvaluator.evaluate

    def counting(self, arch):
        calls.append(self.space.to_string(arch))
        if len(calls) == 3 and crash["on"]:
            raise KeyboardInterrupt  # the process dies during its third training
        return real(self, arch)

    crash = {"on": True}
    monkeypatch.setattr(ImageTrainEvaluator, "evaluate", counting)
    kw = dict(space="nb201", strategy="random", budget="5", seeds=[0], data=squares, recipe=TINY, table=None,
              progress=False)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_search(output=out, **kw)
    hist = read_jsonl(out / "seed-0000" / "history.jsonl")
    assert [r["arch"] for r in hist] == calls[:2]
    import shutil

    shutil.rmtree(out / "eval-cache")  # the history alone must be enough to resume
    crash["on"] = False
    calls.clear()
    resumed = train_search(output=out, **kw)
    assert len(calls) == 3 and not set(calls) & {r["arch"] for r in hist}  # only the unfinished ones trained
    assert read_jsonl(out / "seed-0000" / "history.jsonl")[:2] == hist
    calls.clear()
    fresh = train_search(output=tmp_path / "fresh", **kw)  # the same search, never interrupted
    assert len(calls) == 5
    def pick(s):
        return [(b["arch"], b["score"], b["seed"], b["train_loss"]) for b in s["best"]]

    assert pick(resumed) == pick(fresh) and resumed["queries"]["mean"] == 5


def test_table_backed_space_reports_the_lookup_beside_the_trained_accuracy(squares, tmp_path, synthetic_nb201_table):
    from nascore.cli import main as cli

    out = tmp_path / "tab"
    rc = cli(["search", "--space", "nb201", "--evaluator", "train", "--strategy", "random", "--budget", "3",
              "--data", str(squares), "--table-data", str(synthetic_nb201_table.parent), "--output", str(out),
              "--epochs", "2", "--image-size", "8", "--val-size", "24", "--channels", "4", "--quiet"])
    assert rc == 0
    table = pd.read_csv(synthetic_nb201_table).set_index("arch")
    res = json.loads((out / "seed-0000" / "result.json").read_text())
    best = res["best"]
    trained = {r["arch"]: r["score"] for r in read_jsonl(out / "seed-0000" / "history.jsonl")}
    assert best["score"] == max(trained.values()) and best["valid_accuracy"] == best["score"]
    assert best["test_accuracy"] == pytest.approx(table.loc[best["arch"], "test_acc_200"])
    assert best["table_valid_accuracy"] == pytest.approx(table.loc[best["arch"], "valid_acc_200"])
    assert best["score"] != pytest.approx(best["table_valid_accuracy"])  # the trained score is not the table's
    assert res["config"]["evaluator"] == "train" and res["config"]["fidelity"] == 2
    # --no-table: a dataset of your own gets no benchmark figure
    rc = cli(["search", "--space", "nb201", "--evaluator", "train", "--strategy", "random", "--budget", "2",
              "--data", str(squares), "--no-table", "--output", str(tmp_path / "own"), "--epochs", "1",
              "--image-size", "8", "--val-size", "24", "--channels", "4", "--quiet"])
    assert rc == 0
    assert "test_accuracy" not in json.loads((tmp_path / "own" / "seed-0000" / "result.json").read_text())["best"]


def test_multi_fidelity_rungs_train_for_their_epochs(squares, tmp_path):
    from nascore.train_search import train_search

    s = train_search(space="nb201", strategy="random", budget="3", seeds=[0], output=tmp_path / "mf", data=squares,
                     recipe=TINY, table=None, progress=False, multi_fidelity=True, rungs="1,2", eta=2)
    hist = read_jsonl(tmp_path / "mf" / "seed-0000" / "history.jsonl")
    assert {r["epochs"] for r in hist} == {1, 2} and s["fidelity"] == 2
    assert all(r["metrics"]["epochs"] == r["epochs"] for r in hist)


def test_refusals_are_one_line_user_errors(squares, tmp_path):
    with pytest.raises(UserError, match="no trainable network"):
        ImageTrainEvaluator(get_space("nb101"), squares, TINY)
    with pytest.raises(UserError, match="holds no images"):
        ImageTrainEvaluator(get_space("nb201"), tmp_path, TINY)
    with pytest.raises(UserError, match="epochs"):
        Recipe(epochs=0)
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(squares / "train", bad)
    (bad / "notes").mkdir()  # a folder without images is refused, not trained as an empty class
    with pytest.raises(UserError, match="holds no image"):
        ImageTrainEvaluator(get_space("nb201"), bad, TINY).prepared()


@pytest.mark.slow
def test_ray_executor_trains_the_same_results_as_serial(squares, tmp_path):
    pytest.importorskip("ray")
    from nascore.train_search import train_search

    kw = dict(space="nb201", strategy="random", budget="3", seeds=[1], data=squares, recipe=TINY, table=None,
              progress=False)
    serial = train_search(output=tmp_path / "serial", **kw)
    par = train_search(output=tmp_path / "ray", executor="ray", executor_options={"num_cpus": 2}, batch_size=2, **kw)
    a = {r["arch"]: r["score"] for r in read_jsonl(tmp_path / "serial" / "seed-0001" / "history.jsonl")}
    b = {r["arch"]: r["score"] for r in read_jsonl(tmp_path / "ray" / "seed-0001" / "history.jsonl")}
    assert a == b and serial["best"][0]["arch"] == par["best"][0]["arch"]
    assert not any(r["metrics"].get("cached") for r in read_jsonl(tmp_path / "ray" / "seed-0001" / "history.jsonl"))
