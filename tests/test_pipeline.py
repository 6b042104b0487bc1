"""make book's checks before any notebook runs: profile keys, every chapter's values, a GPU for
the paper profile, and every dataset and file (Fashion-MNIST fetched when missing)."""

import re
import shutil

import pytest

import sharpmem_lib.pipeline as pipeline
from sharpmem_lib.pipeline import REPO_ROOT, main, plan_notebooks, preflight


@pytest.fixture(autouse=True)
def isolated_data_dirs(monkeypatch, tmp_path):
    monkeypatch.delenv("SHARPMEM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def repo(tmp_path):
    """A repository with the real notebooks and a params folder the test writes."""
    root = tmp_path / "repo"
    (root / "notebooks" / "params").mkdir(parents=True)
    for nb in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        shutil.copy(nb, root / "notebooks" / nb.name)
    return root


def write_profile(repo, name, text):
    (repo / "notebooks" / "params" / f"{name}.yaml").write_text(text)


def test_a_profile_key_that_is_no_notebook_stops_the_plan(repo):
    write_profile(repo, "typo", "01_toy_exampel:\n  seeds: 3\n")
    with pytest.raises(ValueError, match=r"\['01_toy_exampel'\] is not a notebook; .*'01_toy_example'"):
        plan_notebooks("typo", repo)


def test_every_chapter_is_checked_before_any_runs(repo):
    write_profile(repo, "bad", "02_memorization_buckets:\n  seeds: 0\n03_privacy_tables:\n  split_seeds: 0\n"
                               "04_mitigation:\n  lams: []\n")
    with pytest.raises(ValueError) as err:
        plan_notebooks("bad", repo)
    text = str(err.value)
    assert "02_memorization_buckets: seeds=0 is not valid" in text
    assert "03_privacy_tables: split_seeds=0 is not valid" in text
    assert "04_mitigation: lams=[] is not valid" in text


@pytest.mark.parametrize("text, message", [
    ("00_data_and_models:\n  seed: \"0\"\n", r"seed='0' is not valid"),
    ("01_toy_example:\n  recipe: 16\n", r"recipe=16 is not valid; it must be a string"),
    ("03_privacy_tables:\n  recipes: '{cifar100: cifar_wrn16_8}'\n",
     r"recipes='\{cifar100: cifar_wrn16_8\}' is not valid"),
    ("03_privacy_tables:\n  algorithms: [sgd]\n", r"unknown parameter\(s\) \['algorithms'\]"),
    ("01_toy_example:\n  seeds: 3\n   rho: 1\n", r"YAML syntax error at line 3"),
])
def test_bad_profiles_fail_the_cli_before_anything_runs(repo, monkeypatch, capsys, text, message):
    write_profile(repo, "bad", text)
    monkeypatch.setattr(pipeline, "plan_notebooks", lambda profile, repo_root=None, only=None: plan_notebooks(
        profile, repo, only))
    monkeypatch.setattr(pipeline, "execute_notebooks", lambda *a, **k: pytest.fail("a notebook was executed"))
    assert main(["execute", "--profile", "bad", "--out", str(repo / "out")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (repo / "out").exists()


def test_paper_profile_without_gpu_or_data_stops_naming_everything(monkeypatch):
    def no_gpu(profile):
        raise RuntimeError(f"profile {profile!r} needs a CUDA GPU, but there is none")

    monkeypatch.setattr(pipeline, "_require_gpu", no_gpu)
    plan = plan_notebooks("paper")
    with pytest.raises(RuntimeError) as err:
        preflight(plan, "paper", log=lambda *_: None)
    text = str(err.value)
    assert "nothing was run" in text and "needs a CUDA GPU" in text
    assert "dataset 'cifar100' not found" in text and "cifar.html" in text and "dataset 'cifar10' not found" in text
    assert "cifar100_infl_matrix.npz" in text and "pluskid.github.io" in text
    assert text.count("dataset 'cifar100' not found") == 1  # once, with the chapters that need it
    assert "needed by 00_data_and_models, 02_memorization_buckets, 03_privacy_tables, 04_mitigation" in text


def test_build_stops_before_staging_or_running(monkeypatch, tmp_path):
    monkeypatch.setattr(pipeline, "_require_gpu", lambda profile: None)
    monkeypatch.setattr(pipeline, "execute_notebooks", lambda *a, **k: pytest.fail("a notebook was executed"))
    with pytest.raises(RuntimeError, match="dataset 'cifar100' not found"):
        pipeline.build_book("paper", tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "_build").exists()


def test_gpu_hook_is_train_require_gpu(monkeypatch):
    import sharpmem_lib.train as train

    calls = []
    monkeypatch.setattr(train, "require_gpu", lambda purpose: calls.append(purpose))
    pipeline._require_gpu("profile 'paper'")
    assert calls == ["profile 'paper'"]


def test_a_cpu_profile_naming_a_wideresnet_recipe_needs_a_gpu_before_anything_runs(monkeypatch):
    """Found by the hostile tester: lira_recipe (or any recipe) naming cifar_wrn16_8 in a CPU
    profile passed every check, then trained WideResNets one by one on the CPU for hours."""
    def no_gpu(purpose):
        raise RuntimeError(f"{purpose} needs a CUDA GPU, but there is none")

    monkeypatch.setattr(pipeline, "_require_gpu", no_gpu)
    plan = [(path, {**params, "lira_recipe": "cifar_wrn16_8"} if path.stem == "03_privacy_tables" else params)
            for path, params in plan_notebooks("smoke")]
    with pytest.raises(RuntimeError) as err:
        preflight(plan, "smoke", log=lambda *_: None, obtain=False)
    assert "nothing was run" in str(err.value) and "03_privacy_tables's lira_recipe='cifar_wrn16_8'" in str(err.value)
    preflight(plan_notebooks("smoke"), "smoke", log=lambda *_: None, obtain=False)  # CPU recipes: no GPU asked


def test_missing_fashion_mnist_is_fetched_before_anything_runs(repo, monkeypatch, tmp_path):
    import sharpmem_lib.data as data

    monkeypatch.setattr(data, "FASHION_SYSTEM_DIR", tmp_path / "nowhere")
    data_dir = tmp_path / "data"
    write_profile(repo, "fashion", f"00_data_and_models:\n  dataset: fashion_mnist\n  data_dir: {data_dir}\n")
    plan = plan_notebooks("fashion", repo, only=["00_data_and_models"])
    with pytest.raises(RuntimeError, match=r"data_dir='.*data' is not valid: .*data does not exist"):
        preflight(plan, "fashion", obtain=False)  # the folder the profile names is not there (yet)
    data_dir.mkdir()
    with pytest.raises(RuntimeError, match=r"dataset 'fashion_mnist' not found"):
        preflight(plan, "fashion", obtain=False)
    fetched = []

    def fake_obtain(where, log=print):
        fetched.append(where)
        folder = data_dir / "fashion_mnist"
        folder.mkdir(parents=True)
        for stem, _, _ in data.FASHION_FILES.values():
            (folder / (stem + ".gz")).write_bytes(b"")

    monkeypatch.setattr(data, "obtain_fashion_mnist", fake_obtain)
    preflight(plan, "fashion", log=lambda *_: None)
    assert fetched == [str(data_dir)]


def test_cli_check_runs_nothing(capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "execute_notebooks", lambda *a, **k: pytest.fail("a notebook was executed"))
    assert main(["check", "--profile", "smoke"]) == 0
    assert "every parameter valid, every file there" in capsys.readouterr().out


@pytest.mark.parametrize("argv, option", [
    (["check", "--profile", "smoke", "--profile", "paper"], r"--profile is given twice with different values "
                                                           r"\(smoke and paper\); give it once"),
    (["execute", "--profile=smoke", "--out", "a", "--out", "b"], r"--out is given twice with different values"),
])
def test_a_pipeline_option_given_twice_with_different_values_is_refused(argv, option, capsys, monkeypatch):
    """Hostile tester, session 8: argparse kept the last of '--profile smoke --profile paper'
    without a word (it checked and would have built the paper profile)."""
    monkeypatch.setattr(pipeline, "plan_notebooks", lambda *a, **k: pytest.fail("planned"))
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and re.search(option, capsys.readouterr().err)


def test_a_pipeline_option_given_twice_with_the_same_value_is_harmless(capsys):
    assert main(["check", "--profile", "smoke", "--profile=smoke", "--notebook", "01_toy_example"]) == 0
    assert "profile 'smoke': 1 notebook(s)" in capsys.readouterr().out


# ------------------------------------------------------------------ every documented command parses


DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "book" / "rerun.md"]
EXTERNAL = {"git", "cd", "echo", "python3", "python3.11", ".venv/bin/pip"}  # not ours (venv, pip, wheels)


def documented_commands(path):
    """Each shell command of the ```bash blocks of a Markdown file, as argv lists."""
    import shlex

    text = path.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                if argv:
                    commands.append(argv)
    return commands


def start_pipeline(argv, monkeypatch):
    """Run the pipeline's own command line up to the point where work would start: argument
    parsing, the profile, and every chapter's parameter checks (data and GPU checks skipped)."""
    monkeypatch.setattr(pipeline, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(pipeline, "execute_notebooks", lambda *a, **k: {})
    monkeypatch.setattr(pipeline, "build_book", lambda profile, out=None, **k: plan_notebooks(profile))
    assert main(argv) == 0, argv


def start_papermill(argv, monkeypatch):
    """papermill's own command line parses the arguments; the parameters it would inject, over
    the smoke profile, must be the notebook's and pass its checks (what its first cell runs)."""
    import papermill
    import papermill.cli

    from sharpmem_lib.parameters import check_parameters, literal_defaults
    from sharpmem_lib.profiles import load_profile

    captured = {}
    monkeypatch.setattr(papermill.cli, "execute_notebook", lambda **kw: captured.update(kw))
    try:
        papermill.cli.papermill.main(argv, standalone_mode=False)
    except SystemExit as err:
        assert not err.code, argv
    notebook = REPO_ROOT / captured["input_path"]
    inspected = papermill.inspect_notebook(notebook)
    unknown = set(captured["parameters"]) - set(inspected)
    assert not unknown, f"{argv}: {sorted(unknown)} are not parameters of {notebook.name}"
    smoke = load_profile("smoke", REPO_ROOT / "notebooks" / "params").get(notebook.stem, {})
    check_parameters(notebook.stem, {**literal_defaults(inspected), **smoke, **captured["parameters"]}, files=False)


def start_subsampling(argv, monkeypatch, tmp_path):
    """The shard / merge command line parses and builds its configuration; nothing trains."""
    import sharpmem_lib.subsampling as subsampling

    class Runs:
        model_ids = []

        def save(self, path):
            pass

    monkeypatch.setattr(subsampling, "run_subsampling_shard", lambda *a, **k: Runs())
    members = type("Partition", (), {"members": range(100)})  # shard checks --fraction against the members first
    monkeypatch.setattr(subsampling, "subsampling_job", lambda config, data_dir=None: type("Job", (), {
        "partition": members}))
    monkeypatch.setattr(subsampling, "load_shard", lambda f: Runs())
    monkeypatch.setattr(subsampling, "merge_runs", lambda parts, names=None: Runs())
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("$SLURM_ARRAY_TASK_ID", "0") for a in argv]
    assert subsampling.main(argv) == 0, argv


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_documented_command_parses_and_starts(doc, monkeypatch, tmp_path):
    commands = documented_commands(doc)
    assert commands, f"no commands found in {doc}"
    for argv in commands:
        while argv and "=" in argv[0] and argv[0].split("=")[0].isidentifier():  # VAR=value prefixes: the command
            argv = argv[1:]
        if argv[0] == "make":
            dry = __import__("subprocess").run(["make", "-n", *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True)
            assert dry.returncode == 0, (argv, dry.stderr)
            for line in dry.stdout.splitlines():  # what make would run of ours
                if "-m sharpmem_lib.pipeline" in line:
                    start_pipeline(line.split("-m sharpmem_lib.pipeline", 1)[1].split(), monkeypatch)
        elif argv[:3] == ["python", "-m", "sharpmem_lib.pipeline"]:
            start_pipeline(argv[3:], monkeypatch)
        elif argv[:3] == ["python", "-m", "sharpmem_lib.subsampling"]:
            start_subsampling(argv[3:], monkeypatch, tmp_path)
        elif argv[0] == "papermill":
            start_papermill(argv[1:], monkeypatch)
        else:
            assert argv[0] in EXTERNAL, f"{doc.name}: no check for the command {argv}; add one here"


def test_a_list_passed_with_p_is_caught(monkeypatch):
    """The reason the docs use -y: -p passes '{cifar100: cifar_wrn16_8}' as a string."""
    with pytest.raises(ValueError, match=r"recipes='\{cifar100: cifar_wrn16_8\}' is not valid; it must be a"):
        start_papermill(["notebooks/03_privacy_tables.ipynb", "out.ipynb", "-p", "recipes",
                         "{cifar100: cifar_wrn16_8}"], monkeypatch)
    with pytest.raises(AssertionError, match=r"\['seedz'\] are not parameters of 01_toy_example.ipynb"):
        start_papermill(["notebooks/01_toy_example.ipynb", "out.ipynb", "-p", "seedz", "3"], monkeypatch)


def test_relative_directories_in_a_profile_are_taken_from_where_make_runs(repo, monkeypatch, tmp_path):
    """The kernels start in notebooks/; a profile's data_dir: data means <where make runs>/data."""
    write_profile(repo, "rel", "00_data_and_models:\n  data_dir: data\n  results_dir: ~/res\n")
    monkeypatch.chdir(tmp_path)
    (_, params), = plan_notebooks("rel", repo, only=["00_data_and_models"])
    assert params["data_dir"] == str(tmp_path / "data")
    assert params["results_dir"] == str(tmp_path / "home" / "res")


# ------------------------------------------------------------------ the training plan


def test_paper_plan_trains_table1_with_its_recipes():
    """Table 1's four datasets, each with its recipe, from the paper profile alone; the CIFAR
    targets get the CIFAR recipe (weight decay 5e-4, x0.2 at 60/120/160, augmentation), which
    the chapter's hand-written settings once dropped."""
    from sharpmem_lib.pipeline import training_plan

    rows = {r["dataset"]: r for r in training_plan("paper", only=["03_privacy_tables"])}
    assert set(rows) == {"cifar100", "cifar10", "purchase100", "texas100"}
    for d in ("cifar100", "cifar10"):
        r = rows[d]
        assert (r["recipe"], r["model"], r["weight_decay"], r["lr_milestones"], r["lr_gamma"], r["augment"]) == (
            "cifar_wrn16_8", "wrn16_8", 5e-4, [60, 120, 160], 0.2, True)
        assert (r["base"], r["lr"], r["momentum"], r["epochs"], r["batch_size"]) == ("sgd", 0.1, 0.9, 200, 256)
    assert (rows["purchase100"]["recipe"], rows["purchase100"]["base"], rows["purchase100"]["epochs"],
            rows["purchase100"]["batch_size"]) == ("purchase_fc", "adam", 30, 512)
    assert (rows["texas100"]["recipe"], rows["texas100"]["epochs"], rows["texas100"]["batch_size"]) == (
        "texas_fc", 20, 128)
    assert rows["cifar100"]["knobs"] == {"sam_rho": 0.1, "sharpreg_rho": 0.01, "sharpreg_lam": 1.5, "sharpreg_xi": 0.3}


def test_plan_command_lists_every_chapters_recipe(capsys):
    from sharpmem_lib.pipeline import main

    assert main(["plan", "--profile", "paper"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "03_privacy_tables" in line]
    assert len(lines) == 4 and all("0.0005" in line and "[60, 120, 160]" in line for line in lines[:2])
    assert any("purchase_fc" in line for line in lines) and any("texas_fc" in line for line in lines)
    assert "00_data_and_models" in out and "cifar_wrn16_8" in out


def test_recipe_uses_names_the_dataset_of_each_recipe():
    from sharpmem_lib.pipeline import recipe_uses

    params = {"dataset": "digits", "recipe": "digits_mlp", "subset_recipe": "digits_mlp_subset",
              "ground_truth_dataset": "longtail", "ground_truth_recipe": "digits_mlp_subset",
              "recipes": {"cifar10": "cifar_wrn16_8"}, "epochs": 3}
    assert recipe_uses(params) == [("recipe", "digits", "digits_mlp"), ("subset_recipe", "digits", "digits_mlp_subset"),
                                   ("ground_truth_recipe", "longtail", "digits_mlp_subset"),
                                   ("recipes[cifar10]", "cifar10", "cifar_wrn16_8")]
