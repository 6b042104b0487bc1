"""Fault injection on the result store (issue 19 §3, §6): a malformed entry of every kind the
store holds is detected, warned about and recomputed, never used; failures leave nothing.

Each fault is applied twice where it matters: plainly (the checksum catches it), and with the
manifest's checksum rewritten to match, as a foreign writer would leave it, so that the
format check behind the checksum is tested too.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from sharpmem_lib import store
from sharpmem_lib.store import CorruptArtifactWarning


def pt_entry(root, calls, value=None):
    """An entry holding a state dict in ``state.pt`` (the format of a run's weights)."""
    value = value if value is not None else {"w": torch.arange(4.0)}

    def compute(staging, work):
        calls.append(1)
        torch.save(value, staging / "state.pt")
        return {"keys": sorted(value)}

    def load(entry):
        state = torch.load(entry.file("state.pt"), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or sorted(state) != entry.meta["keys"]:
            raise ValueError("state.pt does not hold the recorded state dict")
        return state

    return store.get_or_compute("pt", {"n": 4}, compute, load, root=root, namespace="ns")


def json_entry(root, calls):
    return store.cached_json("json", {"n": 1}, lambda: calls.append(1) or {"acc": [0.5, 0.75]}, root=root,
                             namespace="ns")


def npz_entry(root, calls):
    return store.cached_arrays("npz", {"n": 2}, lambda: calls.append(1) or {"masks": np.eye(3, dtype=bool),
                                                                             "scores": np.arange(3.0)},
                               root=root, namespace="ns")


KINDS = {"json": (json_entry, "value.json"), "npz": (npz_entry, "arrays.npz"), "pt": (pt_entry, "state.pt")}


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, torch.Tensor)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def only_entry(root):
    (entry,) = [p for p in (root / "ns").iterdir()]
    return entry


def reseal(entry, name):
    """Rewrite the manifest's checksum of ``name`` to match its (tampered) content, and the
    manifest's own checksum, so that only the format's loader can catch the fault."""
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((entry / name).read_bytes()).hexdigest()
    manifest["manifest_sha256"] = store._manifest_digest(manifest)
    (entry / "manifest.json").write_text(json.dumps(manifest))


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


FOREIGN = {  # a file of the right name but the wrong content, per kind
    "value.json": lambda p: p.write_text("[1, 2, 3]"),  # valid JSON of the wrong type
    "arrays.npz": lambda p: np.savez(open(p, "wb"), masks=np.zeros(5)),  # valid npz, wrong arrays
    "state.pt": lambda p: torch.save([1, 2], p),  # valid pickle-free torch file, wrong object
}


def recomputed(kind, root, calls, match):
    make, _ = KINDS[kind]
    with pytest.warns(CorruptArtifactWarning, match=match):
        value = make(root, calls)
    return value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["truncated", "truncated+resealed", "foreign", "foreign+resealed", "garbage+resealed",
                                   "missing", "emptied"])
def test_a_malformed_file_of_every_kind_is_recomputed(tmp_path, kind, fault):
    make, name = KINDS[kind]
    calls = []
    good = make(tmp_path, calls)
    entry = only_entry(tmp_path)
    path = entry / name
    if fault.startswith("truncated"):
        truncate(path)
    elif fault.startswith("foreign"):
        FOREIGN[name](path)
    elif fault.startswith("garbage"):
        path.write_bytes(b"\x00garbage\xff" * 10)
    elif fault == "missing":
        path.unlink()
    else:
        path.write_bytes(b"")
    if fault.endswith("resealed"):
        reseal(entry, name)
    match = {"missing": "missing"}.get(fault, "checksum" if not fault.endswith("resealed") else "recomputing")
    again = recomputed(kind, tmp_path, calls, match)
    assert len(calls) == 2 and same(good, again)
    # and the recomputed entry is whole again: read back without a warning or a computation
    assert same(make(tmp_path, calls), good) and len(calls) == 2


MANIFEST_FAULTS = {
    "truncated": lambda m, e: truncate(m),
    "not JSON": lambda m, e: m.write_text("not json"),
    "a list": lambda m, e: m.write_text("[1, 2]"),
    "a field missing": lambda m, e: m.write_text(json.dumps({k: v for k, v in json.loads(m.read_text()).items()
                                                             if k != "files"})),
    "a field of the wrong type": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "files": [1]})),
    "an unknown status": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "status": "running"})),
    "another key's": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "key": "0" * 16})),
    "another config": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "config": {"n": 99}})),
    "an older cache version": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "cache_version": 0})),
    "a file outside the entry": lambda m, e: m.write_text(json.dumps(
        {**json.loads(m.read_text()), "files": {"../escape": "0" * 64}})),
    "deleted": lambda m, e: m.unlink(),
    # hand edits that keep every field valid: only the manifest's own checksum catches them
    "meta edited": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "meta": {"edited": 0.123}})),
    "status flipped": lambda m, e: m.write_text(json.dumps({**json.loads(m.read_text()), "status": "diverged"})),
    "its own checksum removed": lambda m, e: m.write_text(json.dumps(
        {k: v for k, v in json.loads(m.read_text()).items() if k != "manifest_sha256"})),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", MANIFEST_FAULTS)
def test_a_malformed_manifest_is_recomputed(tmp_path, kind, fault):
    make, _ = KINDS[kind]
    calls = []
    good = make(tmp_path, calls)
    entry = only_entry(tmp_path)
    MANIFEST_FAULTS[fault](entry / "manifest.json", entry)
    again = recomputed(kind, tmp_path, calls, "manifest|missing")
    assert len(calls) == 2 and same(good, again)


def test_an_entry_copied_under_another_key_is_not_used(tmp_path):
    calls = []
    json_entry(tmp_path, calls)
    source = only_entry(tmp_path)
    other = store.entry_key("json", {"n": 2}, "fp32")
    shutil.copytree(source, source.parent / other)
    with pytest.warns(CorruptArtifactWarning, match="belongs to key"):
        value = store.cached_json("json", {"n": 2}, lambda: calls.append(1) or "mine", root=tmp_path, namespace="ns")
    assert value == "mine" and len(calls) == 2


def test_a_stray_staging_folder_is_ignored_and_the_entry_computed(tmp_path):
    """What a process killed between writing and renaming leaves: never read as the entry."""
    key = store.entry_key("json", {"n": 1}, "fp32")
    stray = tmp_path / "ns" / f".{key}.staging-dead"
    stray.mkdir(parents=True)
    (stray / "value.json").write_text('{"acc": "stale"}')
    calls = []
    assert json_entry(tmp_path, calls) == {"acc": [0.5, 0.75]} and len(calls) == 1


def test_a_missing_dataset_leaves_no_folder(tmp_path, monkeypatch):
    from sharpmem_lib.experiments import ExperimentConfig, run_experiment
    from sharpmem_lib.train import TrainConfig

    (tmp_path / "no-data").mkdir()  # an empty data directory (a missing one is refused by name: DataDirError)
    monkeypatch.setenv("SHARPMEM_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # nor in ~/.cache/sharpmem
    cfg = ExperimentConfig("purchase100", "mlp", TrainConfig(epochs=1))
    results = tmp_path / "results"
    with pytest.raises(FileNotFoundError, match="purchase"):
        run_experiment(cfg, results, data_dir=tmp_path / "no-data", progress=False)
    assert not results.exists()


def test_a_run_entry_with_foreign_outputs_is_recomputed(tmp_path):
    """A run's outputs.npz replaced by a valid npz of the wrong shape, checksum resealed."""
    from sharpmem_lib.experiments import ExperimentConfig, run_experiment
    from sharpmem_lib.train import TrainConfig

    cfg = ExperimentConfig("digits", "mlp", TrainConfig(epochs=2, batch_size=256, lr=0.1),
                           model_kwargs={"hidden": (8,)})
    first = run_experiment(cfg, tmp_path, progress=False)
    logits = first.outputs()["logits_final"]
    np.savez(open(first.path / "outputs.npz", "wb"), logits_final=logits[:10], logits_best=logits,
             member=np.zeros(5, bool), validation=np.zeros(5, bool))
    reseal(first.path, "outputs.npz")
    with pytest.warns(CorruptArtifactWarning, match="inconsistent shapes"):
        second = run_experiment(cfg, tmp_path, progress=False)
    assert np.array_equal(second.outputs()["logits_final"], logits)


def test_a_corrupt_selena_sub_model_is_retrained_and_the_run_matches(tmp_path):
    """SELENA's finished sub-models are store entries: one damaged while the run was
    interrupted is reported and retrained, and the resumed run equals an uninterrupted one."""
    from sharpmem_lib.data import ToyMixture
    from sharpmem_lib.defenses import train_selena
    from sharpmem_lib.models import MLP
    from sharpmem_lib.train import TrainConfig

    train = ToyMixture().sample(200, seed=0)
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05)
    kill = {"at": None, "builds": 0}

    def build():
        kill["builds"] += 1
        if kill["builds"] == kill["at"]:
            raise KeyboardInterrupt
        return MLP(2, 2, (8,))

    whole = train_selena(build, train.X, train.y, config, n_models=3, n_excluded=1, progress=False)
    kill.update(at=3, builds=0)
    with pytest.raises(KeyboardInterrupt):
        train_selena(build, train.X, train.y, config, n_models=3, n_excluded=1, progress=False,
                     checkpoint_path=tmp_path / "run.pt")
    finished = sorted((tmp_path / "run.pt.split-ai").glob("*/probs.npz"))
    assert len(finished) == 2
    truncate(finished[0])
    kill.update(at=None, builds=0)
    with pytest.warns(CorruptArtifactWarning, match="checksum"):
        resumed = train_selena(build, train.X, train.y, config, n_models=3, n_excluded=1, progress=False,
                               checkpoint_path=tmp_path / "run.pt")
    assert kill["builds"] == 3  # the damaged sub-model, the missing one, the student
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert not (tmp_path / "run.pt.split-ai").exists()


def test_subsampling_entries_and_their_chunks_are_verified(tmp_path):
    """The subset models' cached runs and the finished chunks of an interrupted run are store
    entries: a damaged one of either is reported and recomputed, with the same results."""
    from sharpmem_lib.models import MLP
    from sharpmem_lib.subsampling import SubsamplingConfig, run_subsampling, run_subsampling_experiment
    from sharpmem_lib.train import TrainConfig

    config = SubsamplingConfig("digits", "mlp", TrainConfig(epochs=1, batch_size=64, lr=0.1), n_models=4,
                               model_kwargs={"hidden": (8,)}, device="cpu")
    first, _, _ = run_subsampling_experiment(config, tmp_path, progress=False)
    (entry,) = [p for p in (tmp_path / "digits").iterdir()]
    truncate(entry / "runs.npz")
    reseal(entry, "runs.npz")
    with pytest.warns(CorruptArtifactWarning, match="recomputing"):
        again, _, _ = run_subsampling_experiment(config, tmp_path, progress=False)
    np.testing.assert_array_equal(again.correct_test, first.correct_test)

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)).astype(np.float32), rng.integers(0, 2, 60)
    cfg = TrainConfig(epochs=1, batch_size=20, lr=0.1)
    build = lambda: MLP(4, 2, (8,))  # noqa: E731
    whole = run_subsampling(build, X, y, X[:10], y[:10], cfg, n_models=4, chunk=2, checkpoint_dir=tmp_path / "c",
                            progress=False)
    chunks = sorted((tmp_path / "c").glob("*/chunk.npz"))
    assert len(chunks) == 2
    FOREIGN["value.json"](chunks[0])  # not even an npz
    with pytest.warns(CorruptArtifactWarning, match="checksum"):
        resumed = run_subsampling(build, X, y, X[:10], y[:10], cfg, n_models=4, chunk=2,
                                  checkpoint_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(resumed.confidence_train, whole.confidence_train)
