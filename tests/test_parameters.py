"""Chapter parameters: every value is checked by name, type, range and against the values it
goes with, before anything trains; a papermill parameter the notebook lacks is an error."""

import ast
import re

import jupytext
import numpy as np
import pytest

from sharpmem_lib.parameters import (
    check_notebook_parameters,
    check_parameters,
    injected_parameters,
    literal_defaults,
    needed_datasets,
    needed_files,
    rule_for,
)
from sharpmem_lib.pipeline import REPO_ROOT, notebook_paths
from sharpmem_lib.profiles import load_profile

NOTEBOOKS = notebook_paths()
IDS = [p.stem for p in NOTEBOOKS]


@pytest.fixture(autouse=True)
def isolated_data_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def parameters_cell(ipynb):
    nb = jupytext.read(ipynb)
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def defaults(ipynb) -> dict:
    tree = ast.parse(parameters_cell(ipynb))
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets}


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_every_parameter_has_a_rule_and_the_defaults_pass(ipynb):
    params = defaults(ipynb)
    assert [n for n in params if rule_for(n) is None] == [], "add a rule in sharpmem_lib/parameters.py"
    check_parameters(ipynb.stem, params)


@pytest.mark.parametrize("profile", ["smoke", "default", "laptop", "paper"])
@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_every_profile_passes_the_checks(profile, ipynb):
    params = {**defaults(ipynb), **load_profile(profile, REPO_ROOT / "notebooks" / "params").get(ipynb.stem, {})}
    check_parameters(ipynb.stem, params, files=False)  # the paper's files are not here


@pytest.mark.parametrize("chapter, change, message", [
    ("00_data_and_models", {"seed": "0"}, r"seed='0' is not valid; it must be an integer >= 0 \(without quotes\)"),
    ("01_toy_example", {"sam_rho": "5e-2"}, r"sam_rho='5e-2' is not valid; .*YAML reads 5e-2 as a string: a number in "
     r"exponent notation needs a dot and a signed exponent; write sam_rho: 0.05 or 5.0e-2, without quotes"),
    ("04_mitigation", {"sharpreg_xi": "5e-1"}, r"sharpreg_xi='5e-1' is not valid; .*write sharpreg_xi: 0.5 or "
     r"5.0e-1,"),
    # a quoted number the knob would refuse gets no 'write X' hint (1000 > ξ's range, 1e300 > ρ's cap)
    ("04_mitigation", {"sharpreg_xi": "1e3"}, r"sharpreg_xi='1e3' is not valid; .*as a number, 1e3 would be out of "),
    ("04_mitigation", {"sharpreg_rho": "1.0e300"}, r"sharpreg_rho='1.0e300' .*as a number, 1.0e300 would be out of "),
    ("04_mitigation", {"lams": [0.0, "2e0"]}, r"lams\[1\]='2e0' .*write lams\[1\] as 2.0 or 2.0e\+0, without"),
    ("00_data_and_models", {"seed": "1e2"}, r"seed='1e2' is not valid; it must be an integer >= 0 \(YAML reads 1e2 "
     r"as a string: .*write seed: 100, without quotes\)"),
    ("00_data_and_models", {"seed": True}, r"seed=True is not valid; it must be an integer"),
    ("00_data_and_models", {"epochs": 2.5}, r"epochs=2.5 is not valid; it must be an integer >= 1"),
    ("00_data_and_models", {"algorithms": []}, r"algorithms=\[\] is not valid; it must be a non-empty list"),
    ("00_data_and_models", {"algorithms": "sgd"}, r"algorithms='sgd' is not valid; it must be a list of"),
    ("00_data_and_models", {"algorithms": ["sam", "sam"]}, r"without repeats \('sam' appears twice\)"),
    ("00_data_and_models", {"lr_milestones": [30, 10]}, r"lr_milestones=\[30, 10\] .* increasing order"),
    ("00_data_and_models", {"recipe": "cifar"}, r"recipe='cifar' is not valid; choose one of \['cifar_wrn16_8'"),
    ("00_data_and_models", {"recipe": 3}, r"recipe=3 is not valid; it must be a string"),
    ("00_data_and_models", {"augment": "yes"}, r"augment='yes' is not valid; it must be true or false"),
    ("00_data_and_models", {"model": "resnet"}, r"model='resnet' is not valid; choose one of \['mlp'"),
    ("00_data_and_models", {"dataset": "toy2d"}, r"dataset='toy2d' is not valid; choose one of \['digits'"),
    ("00_data_and_models", {"momentum": 1.0}, r"momentum=1.0 is not valid; it must be a finite number >= 0 and < 1"),
    ("00_data_and_models", {"lr": float("nan")}, r"lr=nan is not valid"),
    ("01_toy_example", {"hidden": 16}, r"hidden=16 is not valid; it must be a list of layer widths .*e.g. \[64\]"),
    ("01_toy_example", {"hidden": [16, 0]}, r"hidden\[1\]=0 is not valid; it must be an integer >= 1"),
    ("01_toy_example", {"n_few": 5000}, r"n_few=5000 and n_many=2000 are not valid together"),
    ("01_toy_example", {"seeds_many": 0}, r"seeds_many=0 is not valid; it must be an integer >= 1"),
    ("01_toy_example", {"atypical_weight": 1.0}, r"atypical_weight=1.0 is not valid"),
    ("02_memorization_buckets", {"seeds": 0}, r"seeds=0 is not valid; it must be an integer >= 1"),
    ("02_memorization_buckets", {"n_models": 1}, r"n_models=1 is not valid; it must be an integer >= 2"),
    ("02_memorization_buckets", {"ground_truth_dataset": "digits"},
     r"ground_truth_dataset='digits' .*\['', 'longtail'\]"),
    ("02_memorization_buckets", {"influence_file": "fz.npz"},
     r"influence_file='fz.npz' is not valid with dataset='fashion_mnist_cpu'"),
    ("03_privacy_tables", {"split_seeds": 0}, r"split_seeds=0 is not valid; it must be an integer >= 1"),
    ("03_privacy_tables", {"recipes": {}}, r"recipes=\{\} is not valid; it must be a non-empty mapping of dataset"),
    ("03_privacy_tables", {"recipes": "{cifar100: cifar_wrn16_8}"},
     r"recipes='\{cifar100: cifar_wrn16_8\}' is not valid; it must be a non-empty mapping"),
    ("03_privacy_tables", {"recipes": {"digits": "digits_mlp", "cifar1000": "cifar_wrn16_8"}},
     r"recipes \(dataset\)='cifar1000' is not valid; choose one of"),
    ("03_privacy_tables", {"recipes": {"digits": "digit_mlp"}},
     r"recipes\['digits'\]='digit_mlp' is not valid; choose one of \['cifar_wrn16_8'"),
    ("03_privacy_tables", {"recipes": {"longtail": "longtail_mlp"}, "boundary_dataset": "digits"},
     r"boundary_dataset='digits' is not valid; choose one of \['longtail'\]"),
    ("03_privacy_tables", {"recipes": {"longtail": "longtail_mlp"}},
     r"lira_dataset='fashion_mnist_cpu' is not valid; choose one of \['longtail'\]"),
    ("03_privacy_tables", {"lira_recipe": "fashion_mlp_lir"},
     r"lira_recipe='fashion_mlp_lir' is not valid; choose one of"),
    ("03_privacy_tables", {"lira_fraction": 1.0}, r"lira_fraction=1.0 is not valid"),
    ("03_privacy_tables", {"which": "last"}, r"which='last' is not valid; choose one of \['best', 'final'\]"),
    ("03_privacy_tables", {"boundary_methods": [], "boundary_dataset": "digits", "recipes": {"digits": "digits_mlp"},
                           "lira_dataset": ""},
     r"boundary_methods=\[\] is not valid with boundary_dataset='digits'"),
    ("03_privacy_tables", {"lira_targets": 200, "lira_models": 128},
     r"lira_targets=200 is not valid with lira_models=128"),
    ("04_mitigation", {"lams": []}, r"lams=\[\] is not valid; it must be a non-empty list"),
    ("04_mitigation", {"lams": [0.5, 1.0]}, r"lams=\[0.5, 1.0\] is not valid: it must contain 0"),
    ("04_mitigation", {"xis": [0.3, -1]}, r"xis\[1\]=-1 is not valid"),
    ("04_mitigation", {"selena_excluded": 6, "selena_models": 6},
     r"selena_excluded=6 is not valid with selena_models=6"),
    ("04_mitigation", {"label_smoothing": 1.0}, r"label_smoothing=1.0 is not valid"),
])
def test_bad_values_name_the_parameter(chapter, change, message):
    ipynb = REPO_ROOT / "notebooks" / f"{chapter}.ipynb"
    with pytest.raises(ValueError, match=message):
        check_parameters(chapter, {**defaults(ipynb), **change})


@pytest.mark.parametrize("chapter, name, value", [
    ("02_memorization_buckets", "n_models", 2_000_000), ("02_memorization_buckets", "ground_truth_models", 100_000),
    ("03_privacy_tables", "lira_models", 2_000_000), ("03_privacy_tables", "train_seeds", 50_000),
    ("01_toy_example", "seeds", 1_000_000), ("01_toy_example", "grid_resolution", 200_000),
    ("04_mitigation", "selena_models", 250_000), ("04_mitigation", "sharpness_iters", 5_000_000),
])
def test_a_count_far_above_the_paper_scale_is_refused_as_a_typo(chapter, name, value):
    """Hostile tester: n_models=2000000 started hours of work; now refused before anything runs
    (and before the chapter checks that would draw a members x models mask for it)."""
    from sharpmem_lib.parameters import COUNT_CAPS

    ipynb = REPO_ROOT / "notebooks" / f"{chapter}.ipynb"
    with pytest.raises(ValueError, match=rf"{name}={value} is not valid; it must be at most [0-9,]+, a guard against "
                                         r"typos .*COUNT_CAPS"):
        check_parameters(chapter, {**defaults(ipynb), name: value})
    cap = {"n_models": "models", "train_seeds": "seeds", "seeds": "seeds"}.get(name)
    if cap:  # the cap itself passes (the paper profile, far below every cap, passes in the test above)
        check_parameters(chapter, {**defaults(ipynb), name: COUNT_CAPS[cap]}, files=False)


@pytest.mark.parametrize("chapter, name, value, cap", [
    ("01_toy_example", "sam_rho", 1e300, 10), ("04_mitigation", "sharpreg_rho", 10.5, 10),
    ("00_data_and_models", "lr", 50.0, 10), ("04_mitigation", "sharpreg_lam", 1e6, 100),
    ("04_mitigation", "sharpreg_xi", 101, 100), ("04_mitigation", "advreg_alpha", 1e9, 100),
    ("04_mitigation", "dp_noise", 1e4, 100), ("04_mitigation", "dp_clip", 1e5, 1000),
    ("00_data_and_models", "weight_decay", 5.0, 1),
])
def test_a_real_knob_far_above_any_use_is_refused_naming_it(chapter, name, value, cap):
    """Hostile tester, session 8: sam_rho=1e300 passed the check, trained, and diverged with 'try
    a smaller lr or xi', naming parameters that were not at fault. Each knob has a documented cap
    (FLOAT_CAPS, far above every profile: test_every_profile_passes_the_checks), named when hit."""
    ipynb = REPO_ROOT / "notebooks" / f"{chapter}.ipynb"
    params = {**defaults(ipynb), name: value}
    if name not in params:
        pytest.skip(f"{chapter} has no {name}")
    with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}") + rf" is not valid; it must be at most {cap:g} "
                                         r"\(a guard against typos.*FLOAT_CAPS\["):
        check_parameters(chapter, params, files=False)
    check_parameters(chapter, {**params, name: float(cap)}, files=False)  # the cap itself passes


def test_a_sweep_far_above_any_use_is_refused_naming_the_item():
    ipynb = REPO_ROOT / "notebooks" / "04_mitigation.ipynb"
    with pytest.raises(ValueError, match=r"xis\[2\]=500.0 is not valid; it must be at most 100 \(a guard"):
        check_parameters("04_mitigation", {**defaults(ipynb), "xis": [0.0, 0.3, 500.0]}, files=False)
    with pytest.raises(ValueError, match=r"lams=5 is not valid; it must be a list of numbers >= 0 and <= 100"):
        check_parameters("04_mitigation", {**defaults(ipynb), "lams": 5}, files=False)


def test_a_suffixed_knob_follows_its_cap():
    from sharpmem_lib.parameters import rule_for

    rule_for("subset_lr")("subset_lr", 0.05, {})
    with pytest.raises(ValueError, match=r"probe_rho=20.0 is not valid; it must be at most 10"):
        rule_for("probe_rho")("probe_rho", 20.0, {})


def test_missing_files_are_named_with_where_to_get_them(tmp_path):
    params = {**defaults(REPO_ROOT / "notebooks" / "03_privacy_tables.ipynb"),
              "recipes": {"cifar100": "cifar_wrn16_8", "purchase100": "purchase_fc"}, "boundary_dataset": "",
              "lira_dataset": "",
              "data_dir": str(tmp_path)}
    problems = needed_files(params)
    assert len(problems) == 2 and "cifar.html" in problems[0] and "dataset_purchase.tgz" in problems[1]
    with pytest.raises(FileNotFoundError, match=r"03_privacy_tables: dataset 'cifar100' not found"):
        check_parameters("03_privacy_tables", params)


def test_influence_file_is_looked_up_in_the_data_directory(tmp_path):
    params = {**defaults(REPO_ROOT / "notebooks" / "02_memorization_buckets.ipynb"), "dataset": "cifar100",
              "influence_file": "cifar100_infl_matrix.npz", "data_dir": str(tmp_path)}
    problems = needed_files(params)
    assert any(str(tmp_path / "cifar100_infl_matrix.npz") in p and "pluskid" in p for p in problems)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar100_infl_matrix.npz", tr_labels=rng.integers(0, 10, 5), tt_labels=np.zeros(2, int),
             tr_mem=np.zeros(5))
    assert any("the file is for another dataset" in p for p in needed_files(params))


def test_needed_datasets():
    assert needed_datasets({"datasets": ["a", "b"], "boundary_dataset": "a", "lira_dataset": "",
                            "ground_truth_dataset": "c", "dataset_kwargs": 3}) == ["a", "b", "c"]
    assert needed_datasets({"recipes": {"d": "digits_mlp", "a": "x"}, "boundary_dataset": "a"}) == ["d", "a"]


def test_user_npz_dataset_is_a_valid_choice(tmp_path):
    X, y = np.zeros((40, 3), np.float32), np.arange(40) % 2
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    params = {**defaults(REPO_ROOT / "notebooks" / "00_data_and_models.ipynb"), "dataset": "mine",
              "data_dir": str(tmp_path)}
    check_parameters("00_data_and_models", params)
    with pytest.raises(ValueError, match=r"dataset='mien' is not valid; choose one of \[.*'mine'"):
        check_parameters("00_data_and_models", {**params, "dataset": "mien"})


# ------------------------------------------------------------------ papermill's injected names


PARAMS_CELL = 'profile = "default"\nseeds = 10\nsam_rho = 0.1\n'


def test_injected_parameters_are_read_from_the_kernel_history():
    history = ["", "import sys", PARAMS_CELL, '# Parameters\nseedz = 3\nprofile = "smoke"\n', "x = 1"]
    assert injected_parameters(history) == (["seedz", "profile"], ["profile", "seeds", "sam_rho"])
    assert injected_parameters(["", "import sys", PARAMS_CELL]) is None


def test_unknown_injected_parameter_stops_the_notebook():
    namespace = {"In": ["", PARAMS_CELL, "# Parameters\nseedz = 3\n"], "profile": "default", "seeds": 10,
                 "sam_rho": 0.1, "seedz": 3}
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['seedz'\] for notebook '01_toy_example'; "
                                         r"valid parameters are \['profile', 'sam_rho', 'seeds'\]"):
        check_notebook_parameters(namespace, "01_toy_example")


def test_papermill_yaml_with_a_repeated_key_is_refused_naming_it(tmp_path, monkeypatch):
    """Hostile tester: papermill -y 'lams: [0, 1]\nlams: [0, 2]' ran lams = [0, 2] without a word
    (papermill's loader keeps the last); the notebook's check now re-reads papermill's YAML."""
    from sharpmem_lib import parameters
    from sharpmem_lib.parameters import check_papermill_yaml, papermill_yaml

    argv = ["/venv/bin/python", "/venv/bin/papermill", "in.ipynb", "out.ipynb", "-y", "lams: [0, 1]\nlams: [0, 2]",
            "-p", "seeds", "3", "--parameters_yaml={xis: [0], xis: [1]}", "-yseeds: 2", "-f", str(tmp_path / "p.yaml")]
    assert [o for o, _ in papermill_yaml(argv)] == ["-y", "-y", "-y", "-f"]
    assert papermill_yaml(argv)[1] == ("-y", "{xis: [0], xis: [1]}")
    with pytest.raises(ValueError, match=r"papermill -y 'lams: \[0, 1\]\\nlams: \[0, 2\]': 'lams' is given twice "
                                         r"in the same mapping; papermill would keep the last value silently"):
        check_papermill_yaml(argv)
    with pytest.raises(ValueError, match=r"'xis' is given twice"):  # the flow form, in --opt=value
        check_papermill_yaml(argv[:4] + argv[6:10])
    (tmp_path / "p.yaml").write_text("train_seeds: 5\nsplit_seeds: 1\ntrain_seeds: 6\n")
    with pytest.raises(ValueError, match=r"papermill -f '.*p.yaml': 'train_seeds' is given twice"):
        check_papermill_yaml(argv[:4] + argv[-2:])
    check_papermill_yaml(argv[:4] + ["-y", "lams: [0, 1]\nxis: [0]", "-p", "seeds", "3"])  # each key once: fine
    check_papermill_yaml(["python", "-m", "sharpmem_lib.pipeline", "-y", "a: 1\na: 2"])  # not papermill: not ours
    namespace = {"In": ["", PARAMS_CELL], "profile": "default", "seeds": 3, "sam_rho": 0.1}
    monkeypatch.setattr(parameters, "_papermill_argv", lambda: argv[:6])
    with pytest.raises(ValueError, match=r"'lams' is given twice"):
        check_notebook_parameters(namespace, "01_toy_example")


def test_notebook_check_uses_the_current_values():
    namespace = {"In": ["", PARAMS_CELL, "# Parameters\nseeds = '3'\n"], "profile": "default", "seeds": "3",
                 "sam_rho": 0.1}
    with pytest.raises(ValueError, match=r"seeds='3' is not valid"):
        check_notebook_parameters(namespace, "01_toy_example")
    namespace.update(seeds=3, In=["", PARAMS_CELL])  # run by hand: no injected cell, values still checked
    assert check_notebook_parameters(namespace, "01_toy_example") == {"profile": "default", "seeds": 3, "sam_rho": 0.1}
    namespace["sam_rho"] = -1.0
    with pytest.raises(ValueError, match=r"sam_rho=-1.0"):
        check_notebook_parameters(namespace, "01_toy_example")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=IDS)
def test_every_notebook_checks_its_parameters_right_after_the_parameters_cell(ipynb):
    nb = jupytext.read(ipynb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    i = next(k for k, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    assert f'check_notebook_parameters(globals(), "{ipynb.stem}")' in code[i + 1].source


def test_literal_defaults():
    inspected = {"a": {"default": "[1, 2]"}, "b": {"default": '"x"'}, "c": {"default": "not a literal"}}
    assert literal_defaults(inspected) == {"a": [1, 2], "b": "x", "c": "not a literal"}


def test_paper_profile_gives_paired_verdicts_and_runs_selenas_nn_attack():
    """Referee findings 6 and 10: with one training seed every paired verdict on the paper
    profile was 'insufficient', and its chapter 3 ran the short CPU NN attack."""
    import inspect

    from sharpmem_lib.attacks.single_query import nn_attack
    from sharpmem_lib.privacy import NN_OPTIONS

    paper = load_profile("paper", REPO_ROOT / "notebooks" / "params")
    for chapter in ("03_privacy_tables", "04_mitigation"):
        assert paper[chapter]["train_seeds"] >= 5  # issue 16: >= 5 seeds where methods are compared
    assert paper["03_privacy_tables"]["nn_attack"] == paper["04_mitigation"]["nn_attack"] == "selena"
    defaults = {k: p.default for k, p in inspect.signature(nn_attack).parameters.items()}
    selena = {**defaults, **NN_OPTIONS["selena"]}
    assert (selena["epochs"], selena["batch_size"], selena["lr"]) == (150, 512, 1e-4)  # SELENA's dsq_attack.py
    assert rule_for("nn_attack") is not None
    with pytest.raises(ValueError, match="nn_attack='fast' is not valid"):
        check_parameters("03_privacy_tables", {"nn_attack": "fast"}, files=False)


def test_a_parameter_papermill_gets_twice_with_different_values_is_refused(tmp_path, monkeypatch):
    """Hostile tester, session 8: papermill -y 'seeds: 3' -y 'seeds: 5' (or -p twice, or -f and
    -p) ran the last value without a word. Every parameter option is read: -b, -f, -y, -p, -r."""
    import base64

    from sharpmem_lib import parameters
    from sharpmem_lib.parameters import check_papermill_yaml, papermill_options

    pm = ["/venv/bin/python", "/venv/bin/papermill", "in.ipynb", "out.ipynb"]
    assert papermill_options(pm + ["-p", "lr", "0.1", "--parameters=seeds", "2", "-rdataset", "digits", "-b", "e30="]) \
        == [("-p", ["lr", "0.1"]), ("-p", ["seeds", "2"]), ("-r", ["dataset", "digits"]), ("-b", ["e30="])]
    with pytest.raises(ValueError, match=r"parameter 'seeds' is given 2 times with different values \(papermill -y "
                                         r"'seeds: 3' gives 3; papermill -y 'seeds: 5' gives 5\); papermill would "
                                         r"keep 5 silently"):
        check_papermill_yaml(pm + ["-y", "seeds: 3", "-y", "seeds: 5"])
    with pytest.raises(ValueError, match=r"'sam_rho' is given 2 times .*-p sam_rho 0.1 gives 0.1; .*-p sam_rho 0.2"):
        check_papermill_yaml(pm + ["-p", "sam_rho", "0.1", "--parameters", "sam_rho", "0.2"])
    (tmp_path / "p.yaml").write_text("train_seeds: 5\n")
    with pytest.raises(ValueError, match=r"'train_seeds' is given 2 times .*p.yaml' gives 5; papermill -p train_seeds "
                                         r"6 gives 6\); papermill would keep 6"):
        check_papermill_yaml(pm + ["-p", "train_seeds", "6", "-f", str(tmp_path / "p.yaml")])  # -p applies last
    encoded = base64.b64encode(b"lams: [0, 1]").decode()
    with pytest.raises(ValueError, match=r"'lams' is given 2 times .*papermill -b '.*' gives \[0, 1\]"):
        check_papermill_yaml(pm + [f"--parameters_base64={encoded}", "-y", "lams: [0, 2]"])
    with pytest.raises(ValueError, match=r"'augment' is given 2 times"):  # True is not 1
        check_papermill_yaml(pm + ["-p", "augment", "True", "-y", "augment: 1"])
    # the same value twice, in any spelling papermill reads alike, is harmless
    check_papermill_yaml(pm + ["-y", "seeds: 3", "-p", "seeds", "3", "-f", str(tmp_path / "p.yaml"), "-y",
                               "{train_seeds: 5, lr: 0.1}", "-p", "lr", "0.1", "-r", "dataset", "digits", "-y",
                               "dataset: digits", f"-b{encoded}"])
    namespace = {"In": ["", PARAMS_CELL], "profile": "default", "seeds": 3, "sam_rho": 0.1}
    monkeypatch.setattr(parameters, "_papermill_argv", lambda: pm + ["-p", "seeds", "3", "-p", "seeds", "4"])
    with pytest.raises(ValueError, match=r"'seeds' is given 2 times"):  # the notebook's own check
        check_notebook_parameters(namespace, "01_toy_example")


def test_provenance_says_how_the_parameters_were_given(monkeypatch):
    """Hostile tester, session 8: a notebook executed with papermill directly (-p seeds 3, no
    profile) showed 'profile: default' under its results, as if the default profile had run."""
    from sharpmem_lib import parameters
    from sharpmem_lib.provenance import parameter_source, provenance_table

    monkeypatch.setattr(parameters, "_NOTEBOOK_RUN", None)
    ipynb = REPO_ROOT / "notebooks" / "01_toy_example.ipynb"
    cell, smoke = parameters_cell(ipynb), load_profile("smoke", REPO_ROOT / "notebooks" / "params")["01_toy_example"]

    def run(injected: dict) -> str:
        namespace = {**defaults(ipynb), **injected}
        history = ["", cell] + (["# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in injected.items())]
                                if injected else [])
        check_notebook_parameters({**namespace, "In": history}, "01_toy_example")
        return provenance_table(namespace["profile"], {}).loc["profile", "value"]

    assert run({}) == "default"  # by hand: the parameters cell, the default profile's values
    assert run({"seeds": 3, "sam_rho": 0.05}) == ("none: seeds, sam_rho given directly (papermill -p/-y, not a "
                                                  "profile); the other parameters are the notebook's defaults "
                                                  "(those of profile 'default')")
    assert run({**smoke, "profile": "smoke"}) == "smoke"  # as the pipeline injects it
    assert run({**smoke, "profile": "smoke", "seeds": smoke["seeds"] + 1}) == (
        "smoke, except: seeds given directly (not as the profile sets them)")
    partial = {k: v for k, v in smoke.items() if k != "n_test"}
    assert run({**partial, "profile": "smoke"}) == (
        "smoke, except: n_test left at the notebook's default (not as the profile sets them)")
    assert parameter_source("paper") == "paper"  # a record of another profile is not used


@pytest.mark.parametrize("name, text", [("lr", "5e-500"), ("lr", "-5e-2"), ("sam_rho", "1e300"), ("seeds", "-1e2")])
def test_exponent_hint_suggests_no_value_the_knob_refuses(name, text):
    """Hostile tester: the hint for '5e-500' said 'write lr: 0.0', which the validator then refuses."""
    from sharpmem_lib import parameters as P

    with pytest.raises(ValueError) as err:
        P.rule_for(name)(name, text, {})
    assert f"as a number, {text} would be out of range too" in str(err.value) and "write " not in str(err.value)
    with pytest.raises(ValueError, match=r"write lr: 0.05 or 5.0e-2, without quotes"):
        P.rule_for("lr")("lr", "5e-2", {})
