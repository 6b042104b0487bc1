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
    ("01_toy_example:\n  hidden: 16\n", r"hidden=16 is not valid; it must be a list"),
    ("03_privacy_tables:\n  datasets: '[cifar100, cifar10]'\n", r"datasets='\[cifar100, cifar10\]' is not valid"),
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
    pipeline._require_gpu("paper")
    assert calls == ["profile 'paper'"]


def test_missing_fashion_mnist_is_fetched_before_anything_runs(repo, monkeypatch, tmp_path):
    import sharpmem_lib.data as data

    monkeypatch.setattr(data, "FASHION_SYSTEM_DIR", tmp_path / "nowhere")
    data_dir = tmp_path / "data"
    write_profile(repo, "fashion", f"00_data_and_models:\n  dataset: fashion_mnist\n  data_dir: {data_dir}\n")
    plan = plan_notebooks("fashion", repo, only=["00_data_and_models"])
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
