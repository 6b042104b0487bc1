"""Chapter 4's studies (sharpmem_lib.mitigation): the targets they train, the learning-rate
control of issue 18 §6, sharpness per unit training loss, and the tests built from them.
No training here: the chapter's smoke run (tests/test_notebooks.py) executes the studies."""

from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from sharpmem_lib import mitigation as mit
from sharpmem_lib.experiments import ExperimentConfig, experiment_config
from sharpmem_lib.stats import paired_test
from sharpmem_lib.train import TrainConfig


@pytest.mark.parametrize("recipe", ["digits_mlp", "cifar_wrn16_8"])
@pytest.mark.parametrize("xi", [0.3, 0.8])
def test_lr_control_is_sgd_at_lr_times_one_minus_xi_and_identical_otherwise(recipe, xi):
    sharpreg = experiment_config(recipe, "digits", "sharpreg", 2, sharpreg_xi=xi, sharpreg_lam=1.5)
    sgd = experiment_config(recipe, "digits", "sgd", 2)
    control = mit.lr_control(sharpreg)
    assert control.train.algorithm == "sgd"
    assert control.train.lr == pytest.approx(sharpreg.train.lr * (1 - xi))
    # everything but the algorithm, its knobs and the learning rate is SharpReg's
    for f in fields(TrainConfig):
        if f.name not in ("algorithm", "rho", "lam", "xi", "lr"):
            assert getattr(control.train, f.name) == getattr(sharpreg.train, f.name), f.name
    assert (control.dataset, control.model, control.model_kwargs) == (sharpreg.dataset, sharpreg.model,
                                                                     sharpreg.model_kwargs)
    # ... and it is exactly the SGD target with the smaller learning rate: a plain SGD run
    assert control == replace(sgd, train=replace(sgd.train, lr=sgd.train.lr * (1 - xi)))
    assert control.key() != sgd.key()


def test_lr_control_at_xi_zero_is_the_sgd_target_and_keeps_a_defense():
    sgd = experiment_config("digits_mlp", "digits", "sgd", 1)
    assert mit.lr_control(experiment_config("digits_mlp", "digits", "sharpreg", 1, sharpreg_xi=0.0)).key() == sgd.key()
    defended = experiment_config("digits_mlp", "digits", "sharpreg", 1, defense="advreg", defense_kwargs={"alpha": 2.0})
    assert mit.lr_control(defended).defense_kwargs == {"alpha": 2.0}


def test_lr_control_refuses_what_it_cannot_control():
    with pytest.raises(ValueError, match="needs a SharpReg target"):
        mit.lr_control(experiment_config("digits_mlp", "digits", "sam", 0))
    for xi in (1.0, 1.5):
        with pytest.raises(ValueError, match="must be positive"):
            mit.lr_control(experiment_config("digits_mlp", "digits", "sharpreg", 0, sharpreg_xi=xi))


def test_control_runs_beside_the_chapters_xi_and_every_sweep_xi_below_one():
    config = mit.MitigationConfig("digits", "digits_mlp", xis=(0.0, 0.2, 1.0, 1.5), sharpreg_xi=0.3, train_seeds=2)
    runs = mit.control_runs(config)
    assert sorted({r["xi"] for r in runs}) == [0.0, 0.2, 0.3]
    assert sorted((r["xi"], r["seed"]) for r in runs) == [(x, s) for x in (0.0, 0.2, 0.3) for s in (0, 1)]
    for r in runs:
        assert r["method"] == mit.CONTROL
        assert r["config"] == mit.lr_control(config.target("sharpreg", r["seed"], sharpreg_xi=r["xi"]))
        assert r["config"].train.lr == pytest.approx(0.05 * (1 - r["xi"]))
    assert mit.control_runs(replace(config, lr_controls=False)) == []


def _old_chapter4_configs() -> list[ExperimentConfig]:
    """Chapter 4's targets as its notebook built them by hand before recipes (default profile)."""
    recipe = dict(epochs=60, lr=0.05, batch_size=32, momentum=0.9, weight_decay=0.0, lr_milestones=(), augment=False)

    def target(seed, defense="none", defense_kwargs=None, **train):
        return ExperimentConfig("digits", "mlp", TrainConfig(**recipe, **train, seed=seed),
                                model_kwargs={"hidden": (128,)}, defense=defense, defense_kwargs=defense_kwargs or {})

    sgd, sam = dict(algorithm="sgd"), dict(algorithm="sam", rho=0.1)
    sharpreg = dict(algorithm="sharpreg", rho=0.01, lam=1.5, xi=0.3)
    out = []
    for s in range(2):
        out += [target(s, **(sgd if lam == 0 else dict(algorithm="sharp", rho=0.01, lam=lam)))
                for lam in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)]
        out += [target(s, algorithm="sharpreg", rho=0.01, lam=1.5, xi=xi) for xi in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5)]
        out += [target(s, **kw) for kw in (sgd, sam, sharpreg)]
        out += [target(s, **sgd, label_smoothing=0.1), target(s, "advreg", {"alpha": 1.0}, **sgd),
                target(s, "selena", {"n_models": 6, "n_excluded": 3}, **sgd),
                target(s, "dpsgd", {"noise_multiplier": 1.0, "max_grad_norm": 1.0}, **sgd)]
    return out


def test_chapter4_targets_keep_the_default_profiles_cached_keys():
    config = mit.MitigationConfig("digits", "digits_mlp")
    new = [r["config"] for runs in (mit.lam_runs(config), mit.xi_runs(config), mit.method_runs(config),
                                    mit.defense_runs(config)) for r in runs]
    assert {c.key() for c in new} == {c.key() for c in _old_chapter4_configs()}
    # chapter 4's SGD target is chapter 3's by design: the recipe's SGD target
    assert config.target("sgd", 1) == experiment_config("digits_mlp", "digits", "sgd", 1)


def test_config_refuses_bad_values_with_their_names():
    with pytest.raises(ValueError, match="must contain 0"):
        mit.MitigationConfig("digits", "digits_mlp", lams=(0.5, 1.0))
    with pytest.raises(ValueError, match="selena_excluded=6 is not valid"):
        mit.MitigationConfig("digits", "digits_mlp", selena_models=6, selena_excluded=6)
    with pytest.raises(ValueError, match="recipe"):
        mit.MitigationConfig("digits", "digits_mpl")
    with pytest.raises(ValueError, match="train_seeds"):
        mit.MitigationConfig("digits", "digits_mlp", train_seeds=0)


def test_normalised_sharpness_divides_lambda_max_by_the_training_loss():
    table = pd.DataFrame({"lambda_max": [10.0, 12.0, 3.0], "train_loss": [0.1, 0.2, 0.0]})
    out = mit.normalised_sharpness(table)
    assert out["lambda_max/loss"].iloc[:2].tolist() == pytest.approx([100.0, 60.0])
    assert np.isnan(out["lambda_max/loss"].iloc[2])  # no loss left: no ratio
    with pytest.raises(ValueError, match="train_loss"):
        mit.normalised_sharpness(table.drop(columns="train_loss"))


def _sharpness_frame() -> pd.DataFrame:
    """SharpReg stops at twice SGD's training loss with a 20 % larger λmax: sharper in λmax,
    flatter per unit loss. SAM: lower λmax at equal loss."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(4):
        for method, lmax, loss in (("sgd", 10.0, 0.1), ("sam", 6.0, 0.1), ("sharpreg", 12.0, 0.2),
                                   (mit.CONTROL, 11.0, 0.15)):
            rows.append({"method": method, "seed": s, "lam": np.nan, "train_loss": loss * (1 + 0.05 * rng.random()),
                         "lambda_max": lmax * (1 + 0.05 * rng.random())})
        for lam in (0.0, 1.0, 2.0):
            rows.append({"method": f"λ = {lam:g}", "seed": s, "lam": lam, "train_loss": 0.1 + 0.1 * lam,
                         "lambda_max": 10.0 + lam + 0.1 * rng.random()})
    return mit.normalised_sharpness(pd.DataFrame(rows))


def test_sharpness_tests_compare_per_unit_loss_as_well_as_raw():
    sharp = _sharpness_frame()
    tests = mit.sharpness_tests(sharp)
    wide = sharp[sharp["lam"].isna()].pivot(index="seed", columns="method")
    raw, per_loss = tests[("sharpness", "sharpreg")], tests[("sharpness/loss", "sharpreg")]
    assert raw[1] == per_loss[1] == 1 and tests[("sharpness", "sam")][1] == -1
    expected_raw = paired_test(wide[("lambda_max", "sharpreg")], wide[("lambda_max", "sgd")])
    ratio = wide["lambda_max"] / wide["train_loss"]
    expected_ratio = paired_test(ratio["sharpreg"], ratio["sgd"])
    assert raw[0].estimate == pytest.approx(expected_raw.estimate) and raw[0].estimate > 0
    assert per_loss[0].estimate == pytest.approx(expected_ratio.estimate) and per_loss[0].estimate < 0
    assert per_loss[0].p_value == pytest.approx(expected_ratio.p_value)
    # along λ: λmax rises, λmax / loss falls (loss grows faster)
    assert tests[("lam trend", "lambda_max")][0].estimate > 0
    assert tests[("lam trend", "lambda_max/loss")][0].estimate < 0


def _fake_results(config: mit.MitigationConfig) -> mit.MitigationResults:
    """Attack rows and sharpness for SGD/SAM/SharpReg and the controls, without training."""
    rng = np.random.default_rng(1)
    rows, ctl = [], []
    for s in range(4):
        for split in range(2):
            for protocol in ("honest", "selena"):
                for which in ("final", "best"):
                    for method, acc in (("sgd", 0.9), ("sam", 0.91), ("sharpreg", 0.85)):
                        rows.append({"method": method, "seed": s, "split_seed": split, "protocol": protocol,
                                     "which": which, "diverged": False, "test_acc": acc + 0.01 * rng.random(),
                                     "single_query": 0.6 + 0.02 * rng.random(),
                                     "multi_query": 0.55 + 0.02 * rng.random()})
                for xi in (0.0, 0.3, 0.6):
                    ctl.append({"method": mit.CONTROL, "xi": xi, "seed": s, "split_seed": split, "protocol": protocol,
                                "which": "final", "diverged": False, "test_acc": 0.88 - xi / 10 + 0.01 * rng.random(),
                                "single_query": 0.62 + 0.02 * rng.random(), "multi_query": 0.5 + 0.02 * rng.random()})
    methods = mit.Evaluated([], pd.DataFrame(rows), {})
    controls = mit.Evaluated([], pd.DataFrame(ctl), {})
    empty = mit.Evaluated([], pd.DataFrame(), {})
    return mit.MitigationResults(config, None, None, empty, empty, methods, empty, controls, _sharpness_frame())


def test_control_tests_pair_sharpreg_with_its_control_at_the_chapters_xi():
    config = mit.MitigationConfig("digits", "digits_mlp", sharpreg_xi=0.3, train_seeds=4)
    res = _fake_results(config)
    tests = mit.control_tests(res)
    assert set(tests) == {"test_acc", "single_query", "multi_query", "lambda_max", "lambda_max/loss"}
    m, c = res.methods.results, res.controls.results
    for metric in ("test_acc", "single_query", "multi_query"):  # honest protocol, final weights, mean over splits
        sr = m[(m.method == "sharpreg") & (m.protocol == "honest") & (m.which == "final")].groupby("seed")[metric]
        ct = c[(c.xi == 0.3) & (c.protocol == "honest")].groupby("seed")[metric]
        by_hand = paired_test(sr.mean().to_numpy(), ct.mean().to_numpy())
        assert tests[metric].estimate == pytest.approx(by_hand.estimate)
        assert tests[metric].p_value == pytest.approx(by_hand.p_value)
    sharp = res.sharpness.set_index(["method", "seed"])
    for metric in ("lambda_max", "lambda_max/loss"):
        d = [sharp.loc[("sharpreg", s), metric] - sharp.loc[(mit.CONTROL, s), metric] for s in range(4)]
        assert tests[metric].estimate == pytest.approx(np.mean(d)) and tests[metric].n == 4


class _FakeArtifact:
    def __init__(self, logits):
        self.logits = logits
        self.history = [{"epsilon": 3.0}]

    def outputs(self):
        return {"logits_final": self.logits, "logits_best": self.logits}


def _fake_study(seeds: int = 3, every_which: bool = False, keyed: bool = False) -> mit.MitigationResults:
    """Every study of the chapter on made-up numbers: 5 buckets of 20 test points, attack rows
    for every run, sharpness for every model; nothing trains. ``every_which``: attack rows for
    the final and best weights of every run (chapter 4 before it attacked only what it shows);
    ``keyed``: each row's numbers depend only on its (run, split, protocol, weights), not on
    which other rows exist."""
    from types import SimpleNamespace

    config = mit.MitigationConfig("digits", "digits_mlp", lams=(0.0, 1.0), xis=(0.0, 0.5, 2.0), train_seeds=seeds,
                                  split_seeds=2)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 100)
    buckets = SimpleNamespace(test_ids=np.arange(100), bucket=np.repeat(np.arange(1, 6), 20), source="fake")
    data = SimpleNamespace(y=y, num_classes=10)

    def evaluated(runs, whiches=("final", "best")):
        rows, arts = [], {}
        for i, run in enumerate(runs):
            logits = np.eye(10)[np.where(rng.random(100) < 0.8, y, (y + 1) % 10)]
            arts[i] = _FakeArtifact(logits)
            labels = {k: v for k, v in run.items() if k not in ("config", "output_defense", "whiches")}
            for split in range(2):
                for protocol in ("honest", "selena"):
                    # as evaluate_runs: the run's own whiches first
                    for which in (whiches if every_which else run.get("whiches", whiches)):
                        defended = run.get("output_defense") is not None
                        key = f"{run['config'].key()}-{defended}-{split}-{protocol}-{which}"
                        r = np.random.default_rng(list(key.encode())) if keyed else rng
                        rows.append({**labels, "split_seed": split, "protocol": protocol, "which": which,
                                     "diverged": False, "test_acc": r.uniform(0.7, 0.9),
                                     "single_query": r.uniform(0.5, 0.6), "multi_query": r.uniform(0.5, 0.6)})
        return mit.Evaluated(runs, pd.DataFrame(rows), arts)

    res = mit.MitigationResults(config, data, buckets, evaluated(mit.lam_runs(config)), evaluated(mit.xi_runs(config)),
                                evaluated(mit.method_runs(config)), evaluated(mit.defense_runs(config)),
                                evaluated(mit.control_runs(config), ("final",)))
    rows = [{"method": r["method"], "seed": r["seed"], "lam": r.get("lam", np.nan), "train_loss": rng.uniform(0.1, 0.2),
             "lambda_max": rng.uniform(5, 10), "sam_sharpness@0.01": 0.1, "sam_sharpness@0.1": 1.0}
            for ev in (res.methods, res.lam) for r in ev.runs]
    rows += [{"method": mit.CONTROL, "seed": r["seed"], "lam": np.nan, "train_loss": 0.15, "lambda_max": 7.0}
             for r in res.controls.runs if r["xi"] == config.sharpreg_xi]
    res.sharpness = mit.normalised_sharpness(pd.DataFrame(rows))
    return res


def test_the_chapters_family_and_sentences_build_from_a_study():
    from sharpmem_lib import report
    from sharpmem_lib.stats import holm_verdicts

    res = _fake_study()
    tests, expected = mit.chapter_tests(res)
    groups = {k[0] for k in tests}
    assert groups == {"lam", "lam trend", "sharpness", "sharpness/loss", "sharpreg", "xi trend", "defense",
                      "lr control"}
    assert {k[1] for k in tests if k[0] == "defense"} == {"SharpReg", "label smoothing 0.1", "AdvReg α=1",
                                                          "SELENA K=6, L=3", "DP-SGD σ=1, C=1", "MemGuard",
                                                          "early stopping (SGD)"}
    assert expected[("lr control", "lambda_max/loss")] == 1 and expected[("lr control", "single_query")] == -1
    verdicts = holm_verdicts(tests, expected)
    lam_b, m_b = mit.bucket_table(res, "lam", "final"), mit.bucket_table(res, "methods", "best")
    numbers = mit.headline_numbers(res, lam_b, m_b)
    assert numbers["dp_epsilon"] == 3.0 and numbers["top_lam"] == "λ = 1"
    # the control at the chapter's ξ enters the sharpness means
    assert numbers["lmax_loss_control"] == pytest.approx(7.0 / 0.15)
    assert numbers["loss_control"] == pytest.approx(0.15) and 0.1 <= numbers["loss_sharpreg"] <= 0.2
    table = mit.control_table(res)
    assert numbers["control_attack_means"][0.3] == pytest.approx(table.loc[0.3, "control single-query (%)"] / 100)
    assert set(numbers["xi_attack_means"]) == {0.0, 0.3, 0.5}
    out = report.mitigation_sentences(numbers, verdicts)
    assert out["control_verdict"].startswith("SharpReg against SGD at lr × 0.7")
    assert all(isinstance(v, str) for v in out.values())
    table = mit.control_table(res)
    assert list(table.index) == [0.0, 0.3, 0.5]  # every ξ both ran, the chapter's own (0.3) included
    m = res.methods.results
    own = m[(m.method == "sharpreg") & (m.protocol == "honest") & (m.which == "final")].groupby("seed")["test_acc"]
    assert table.loc[0.3, "SharpReg test acc (%)"] == pytest.approx(100 * own.mean().mean(), abs=0.006)
    assert mit.xi_outcomes(res) == {"diverged": [], "collapsed": []}


def test_attacking_only_the_shown_weights_changes_no_output_of_the_chapter():
    """Chapter 4 attacks each run only with the weights it shows (run["whiches"]: the ξ sweep,
    the defenses and SharpReg final, SGD also best, the λ sweep both, SGD and SAM of the methods
    study nothing). Every table, figure input, test and number of the chapter must be what it
    was when every run was attacked with both weights."""
    from pandas.testing import assert_frame_equal

    from sharpmem_lib.privacy import summarize

    old, new = _fake_study(every_which=True, keyed=True), _fake_study(keyed=True)
    assert len(new.xi.results) < len(old.xi.results) and len(new.defenses.results) < len(old.defenses.results)
    assert not (new.methods.results.method == "sam").any()
    (t_old, e_old), (t_new, e_new) = mit.chapter_tests(old), mit.chapter_tests(new)
    assert t_old.keys() == t_new.keys() and e_old == e_new
    for k in t_old:
        assert repr(t_old[k]) == repr(t_new[k]), k
    assert mit.chapter_roles(old, t_old) == mit.chapter_roles(new, t_new)
    tables = (lambda r: mit.control_table(r), lambda r: mit.defense_summary(r),
              lambda r: mit.defense_table(mit.defense_summary(r), "honest"),
              lambda r: summarize(r.lam.results, ["lam", "which", "protocol"]),  # Figs. 4b and 4c
              lambda r: (lambda x: x[x.which == "final"].reset_index(drop=True))(  # Fig. 5b
                  summarize(r.xi.results, ["xi", "which", "protocol"])),
              lambda r: summarize(r.controls.results, ["xi", "protocol"]))
    for table in tables:
        assert_frame_equal(table(old), table(new))
    lam_b, m_b = mit.bucket_table(old, "lam", "final"), mit.bucket_table(old, "methods", "best")
    n_old = mit.headline_numbers(old, lam_b, m_b)
    n_new = mit.headline_numbers(new, mit.bucket_table(new, "lam", "final"), mit.bucket_table(new, "methods", "best"))
    assert n_old.keys() == n_new.keys() and mit.xi_outcomes(old) == mit.xi_outcomes(new)
    for k in n_old:
        if isinstance(n_old[k], pd.DataFrame):
            assert_frame_equal(n_old[k], n_new[k])
        else:
            assert repr(n_old[k]) == repr(n_new[k]), k


def test_the_chapters_holm_family_holds_only_the_paper_claims_and_no_ceiling_test():
    """Referee findings 3, 4, 5, 9: the family is confirmatory only (the bucket pattern is a test
    in it), the highest bucket and the control's test accuracy have no paper direction, ceiling
    buckets are empty, and every attack test uses the honest protocol."""
    from sharpmem_lib.stats import NO_DIRECTION, holm_verdicts

    res = _fake_study()
    tests, expected = mit.chapter_tests(res)
    roles = mit.chapter_roles(res, tests)
    top = int(mit.bucket_table(res, "lam", "final")["bucket"].max())
    assert ("lam", "pattern") in tests and expected[("lam", "pattern")] == -1
    assert expected[("lam", top)] == 0 and expected[("lr control", "test_acc")] == 0
    assert ("lr control", "single_query") in roles["exploratory"] and ("lam", 2) in roles["exploratory"]
    verdicts = holm_verdicts(tests, expected, **roles)
    family = [k for k, v in verdicts.items() if v.role == "confirmatory"]
    assert set(family) <= {("lam", 1), ("lam", "pattern"), ("sharpreg", 1), ("sharpreg", "pattern"),
                           ("defense", "SharpReg")} | {(g, m) for g in ("lam trend", "xi trend")
                                                       for m in ("test_acc", "single_query", "multi_query")}
    assert verdicts[("lr control", "test_acc")].outcome in (NO_DIRECTION, "insufficient")
    # a bucket where every run scores 100 % is empty and does not count in the family's size
    lam_b = mit.bucket_table(res, "lam", "final")
    forced = dict(roles, empty=roles["empty"] + [("lam", 3)])
    v2 = holm_verdicts(tests, expected, **forced)
    assert v2[("lam", 3)].role == "empty" and "ceiling" in v2[("lam", 3)].note
    assert all(v.role != "empty" or k[1] in set(mit.ceiling_buckets(lam_b)) | {3} for k, v in v2.items())
    # the trend tests read the honest protocol's rows
    per = mit._per_seed(res.lam.results, "lam", ("single_query",), "honest")
    wide = per.pivot(index="seed", columns="lam", values="single_query")  # two λ: high − low, paired by seed
    assert tests[("lam trend", "single_query")].estimate == pytest.approx((wide[1.0] - wide[0.0]).mean())
    assert list(mit.defense_table(mit.defense_summary(res), "honest").columns) == [
        "test acc (%)", "single-query (%)", "label-only (%)"]


def test_chapter4_attacks_use_the_nn_attack_the_config_names(monkeypatch):
    """Referee finding 6: the paper profile's attacks use SELENA's NN attack (nn_attack: selena)."""
    seen = []

    def fake_runs(runs, data, split_seeds, whiches=("final", "best"), nn="cpu", **opts):
        seen.append(nn)
        return pd.DataFrame({"method": ["x"]}), {}

    monkeypatch.setattr(mit, "evaluate_runs", fake_runs)
    config = mit.MitigationConfig("digits", "smoke_mlp", nn_attack="selena")
    mit._evaluate([{"config": None}], None, config)
    assert seen == ["selena"]
    with pytest.raises(ValueError, match="nn_attack='fast' is not valid"):
        mit.MitigationConfig("digits", "smoke_mlp", nn_attack="fast")


def _sweep(values, seeds=5, slope=-0.02):
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"lam": x, "seed": s, "m": 0.6 + slope * x + 0.1 * s + rng.normal(0, 0.001)}
                         for x in values for s in range(seeds)])


def test_a_two_setting_sweep_is_tested_high_vs_low_paired_by_seed():
    """Referee H1: with two settings and 5 seeds a within-seed rank trend has p >= 0.0625; a paired
    t-test of high − low can resolve a consistent difference."""
    frame = _sweep([0.0, 1.5])
    t = mit.sweep_test(frame, "lam", "m")
    wide = frame.pivot(index="seed", columns="lam", values="m")
    assert t.method == "t" and t.n == 5 and t.estimate == pytest.approx((wide[1.5] - wide[0.0]).mean())
    assert t.p_value < 0.005 and t.estimate < 0
    three = mit.sweep_test(_sweep([0.0, 1.0, 2.0]), "lam", "m")
    assert three.method == "exact permutation" and three.p_min == pytest.approx(2 / 6 ** 5)


def test_chapter4_two_setting_sweeps_are_worded_as_two_settings():
    from sharpmem_lib import report
    from sharpmem_lib.stats import holm_verdicts

    res = _fake_study()
    tests, expected = mit.chapter_tests(res)
    assert all(tests[k].method == "t" for k in tests if k[0] == "lam trend")  # λ in (0, 1): two settings
    assert all("permutation" in tests[k].method for k in tests if k[0] == "xi trend")  # ξ: three settings
    lam_b, m_b = mit.bucket_table(res, "lam", "final"), mit.bucket_table(res, "methods", "best")
    numbers = mit.headline_numbers(res, lam_b, m_b)
    assert numbers["grids"]["lam"] == [0.0, 1.0] and numbers["xi_values"] == [0.0, 0.5, 2.0]
    out = report.mitigation_sentences(numbers, holm_verdicts(tests, expected, **mit.chapter_roles(res, tests)))
    for key in ("lam_test_trend", "lam_attack_trend", "lam_label_trend", "lam_sharpness_trend"):
        assert out[key].startswith("λ = 1 vs λ = 0: "), out[key]
        assert "trend" not in out[key] and "monotone" not in out[key]
    assert "two settings, λ = 0 and λ = 1" in out["lam_grid_note"]
    assert out["lam_attack_measure"].startswith("the accuracy of the honest best single-query attack at λ = 1 minus")
    assert out["xi_divergence"].startswith("No run diverged") and "up to ξ = " in out["xi_divergence"]


def test_sweep_grids_leave_out_a_setting_where_every_run_diverged():
    res = _fake_study()
    assert mit.sweep_grids(res)["xi"] == [0.0, 0.5, 2.0]
    r = res.xi.results
    res.xi.results.loc[:, "diverged"] = r["diverged"].astype(bool) | (r["xi"] == 2.0)
    assert mit.sweep_grids(res)["xi"] == [0.0, 0.5]


def test_the_verdict_table_names_a_two_setting_sweep_by_its_settings():
    from sharpmem_lib import report
    from sharpmem_lib.stats import holm_verdicts
    res = _fake_study()
    tests, expected = mit.chapter_tests(res)
    table = report.mitigation_table(holm_verdicts(tests, expected), mit.sweep_grids(res))
    assert "λ = 1 vs λ = 0: honest best single-query attack" in table.index
    assert "lam trend: single_query" not in table.index
    assert "trend with ξ: honest best single-query attack" in table.index  # three ξ: a rank trend
    # referee L9: no code identifiers (lam: 1, test_acc, single_query, lambda_max/loss) in the labels
    for label in table.index:
        assert not any(code in label for code in ("lam:", "test_acc", "single_query", "multi_query", "lambda_max",
                                                  "lr control", "sharpness/loss")), label
