"""The result store: keys, computed-once under concurrent processes, atomic writes, clean
failures, named I/O errors, provenance. Malformed entries of every kind: test_faults.py."""

import errno
import json
import multiprocessing
import os
import re
import time

import numpy as np
import pytest

from sharpmem_lib import _io, store
from sharpmem_lib.store import DivergedError


def counting(value, calls):
    return lambda: calls.append(1) or value


def listing(root):
    """Every path under ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ----------------------------------------------------------------------------- keys and records


def test_computed_once_then_read_back_with_its_manifest(tmp_path):
    calls = []
    first = store.cached_json("k", {"a": [1, 2]}, counting({"x": 1.5}, calls), root=tmp_path, namespace="ns")
    second = store.cached_json("k", {"a": [1, 2]}, counting({"x": 9.9}, calls), root=tmp_path, namespace="ns")
    assert first == second == {"x": 1.5} and len(calls) == 1
    (entry,) = (tmp_path / "ns").iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["key"] == entry.name == store.entry_key("k", {"a": [1, 2]}, "fp32")
    assert manifest["cache_version"] == store.CACHE_VERSION and isinstance(store.CACHE_VERSION, int)
    assert manifest["config"] == {"a": [1, 2]} and manifest["precision"] == "fp32"
    import hashlib
    assert manifest["files"] == {"value.json": hashlib.sha256((entry / "value.json").read_bytes()).hexdigest()}
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["commit"])  # this checkout's HEAD
    assert manifest["dirty"] in (True, False)


def test_commit_is_this_checkouts_head():
    import subprocess
    from pathlib import Path

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(store.__file__).parent, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert store.code_commit()["commit"] == head


def test_commit_is_unknown_outside_git(monkeypatch, tmp_path):
    import subprocess

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert store.code_commit() == {"commit": "unknown", "dirty": None}


@pytest.mark.parametrize("change", ["config", "precision", "kind", "cache_version"])
def test_every_part_of_the_key_separates_entries(tmp_path, monkeypatch, change):
    calls = []
    base = dict(kind="k", config={"a": 1}, precision="fp32")
    store.cached_json(base["kind"], base["config"], counting(1, calls), root=tmp_path, precision=base["precision"])
    other = dict(base)
    if change == "config":
        other["config"] = {"a": 2}
    elif change == "precision":
        other["precision"] = "bf16-autocast"  # a GPU's mixed precision is another number (issue 17 §4)
    elif change == "kind":
        other["kind"] = "k2"
    else:
        monkeypatch.setattr(store, "CACHE_VERSION", store.CACHE_VERSION + 1)  # a code change that alters results
    store.cached_json(other["kind"], other["config"], counting(2, calls), root=tmp_path, precision=other["precision"])
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_a_code_version_change_recomputes_and_the_old_entry_stays_apart(tmp_path, monkeypatch):
    calls = []
    assert store.cached_json("k", {}, counting("old", calls), root=tmp_path) == "old"
    monkeypatch.setattr(store, "CACHE_VERSION", store.CACHE_VERSION + 1)
    assert store.cached_json("k", {}, counting("new", calls), root=tmp_path) == "new"
    versions = sorted(json.loads((p / "manifest.json").read_text())["cache_version"] for p in tmp_path.iterdir())
    assert versions == [store.CACHE_VERSION - 1, store.CACHE_VERSION] and len(calls) == 2


def test_entries_used_lists_each_entry_with_its_commit_and_version(tmp_path):
    store.clear_entries_used()
    store.cached_json("a", {}, lambda: 1, root=tmp_path)
    store.cached_json("b", {}, lambda: 2, root=tmp_path)
    store.cached_json("a", {}, lambda: 1, root=tmp_path)  # read back: listed once
    used = store.entries_used()
    assert [u["kind"] for u in used] == ["a", "b"]
    assert all(u["commit"] == store.code_commit()["commit"] and u["cache_version"] == store.CACHE_VERSION
               and u["status"] == "complete" for u in used)


def test_bad_key_parts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        store.cached_json("k", {}, lambda: 1, root=tmp_path, precision="")
    with pytest.raises(ValueError, match="config"):
        store.get_or_compute("k", [1, 2], lambda s, w: {}, lambda e: 1, root=tmp_path)


# ----------------------------------------------------------------------------- divergence


def test_divergence_is_recorded_and_raised_without_recomputing(tmp_path):
    calls = []

    def diverging(staging, work):
        calls.append(1)
        (work / "checkpoint.pt").write_bytes(b"state")
        raise FloatingPointError("loss 1e18")

    for _ in range(2):
        with pytest.raises(DivergedError, match="recorded in .*loss 1e18") as info:
            store.get_or_compute("run", {}, diverging, lambda e: 1, root=tmp_path)
        assert isinstance(info.value, FloatingPointError) and info.value.reason == "loss 1e18"
    assert len(calls) == 1
    (entry,) = tmp_path.iterdir()  # the record, and no checkpoint left
    assert json.loads((entry / "manifest.json").read_text())["status"] == "diverged"
    assert store.get_or_compute("run", {}, lambda s, w: calls.append(1) or {}, lambda e: "ok", root=tmp_path,
                                retry_diverged=True) == "ok"
    assert len(calls) == 2 and store.get_or_compute("run", {}, diverging, lambda e: "ok", root=tmp_path) == "ok"


# ----------------------------------------------------------------------------- failures leave nothing


def test_a_failed_computation_leaves_nothing_behind(tmp_path):
    root = tmp_path / "results"

    def failing(staging, work):
        (staging / "half.npz").write_bytes(b"half")
        raise RuntimeError("dataset missing")

    with pytest.raises(RuntimeError, match="dataset missing"):
        store.get_or_compute("run", {}, failing, lambda e: 1, root=root, namespace="digits")
    assert not root.exists()  # not even the folders it created
    (root / "digits").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        store.get_or_compute("run", {}, failing, lambda e: 1, root=root, namespace="digits")
    assert listing(root) == ["digits"]  # a folder that existed before stays


def test_an_interrupted_computation_keeps_only_its_checkpoint_and_resumes(tmp_path):
    class Killed(Exception):
        pass

    def interrupted(staging, work):
        (work / "checkpoint").write_text("epoch 3")
        (staging / "partial-output").write_text("x")
        raise Killed

    with pytest.raises(Killed):
        store.get_or_compute("run", {}, interrupted, lambda e: 1, root=tmp_path)
    key = store.entry_key("run", {}, "fp32")
    assert listing(tmp_path) == [f"{key}.partial", f"{key}.partial/checkpoint"]

    def resumed(staging, work):
        (staging / "out.txt").write_text((work / "checkpoint").read_text())
        return {}

    assert store.get_or_compute("run", {}, resumed, lambda e: e.file("out.txt").read_text(), root=tmp_path) == "epoch 3"
    assert listing(tmp_path) == [key, f"{key}/manifest.json", f"{key}/out.txt"]


def test_a_computation_may_not_write_the_manifest(tmp_path):
    def sneaky(staging, work):
        (staging / "manifest.json").write_text("{}")
        return {}

    with pytest.raises(ValueError, match="manifest.json"):
        store.get_or_compute("k", {}, sneaky, lambda e: 1, root=tmp_path)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- I/O errors name the path


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_results_folder_names_the_path(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(root))):
            store.cached_json("k", {}, lambda: 1, root=root)
    finally:
        root.chmod(0o755)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_read_only_and_full_disks_name_the_path(tmp_path, monkeypatch, code):
    """The same errors as a read-only mount or a full disk, raised where the store writes
    (simulated: the tests run as root, which ignores permissions)."""
    real_open = os.open

    def failing_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(OSError, match=re.escape(str(tmp_path))) as info:
        store.cached_json("k", {}, lambda: 1, root=tmp_path, namespace="ns")
    assert info.value.errno == code and "could not write" in str(info.value)


def test_a_full_disk_during_a_write_names_the_final_path_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "arrays.npz"

    def fill_disk(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=re.escape(str(target))) as info:
        _io.atomic_write(target, fill_disk)
    assert info.value.errno == errno.ENOSPC and not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- concurrent processes


def _slow_entry(root: str, log: str, delay: float):
    """One process asking for an entry whose computation takes ``delay`` seconds."""
    def compute():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(delay)
        return {"computed_by": os.getpid()}

    return store.cached_json("slow", {"n": 1}, compute, root=root, namespace="ns")


def test_concurrent_processes_compute_one_key_once(tmp_path):
    """Processes, not threads: the lock is between processes. Every process gets the one
    computed value; the others waited for it and read it."""
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "computations.log"
    with ctx.Pool(4) as pool:
        values = pool.starmap(_slow_entry, [(str(tmp_path / "r"), str(log), 1.0)] * 4)
    computations = log.read_text().split()
    assert len(computations) == 1
    assert all(v == {"computed_by": int(computations[0])} for v in values)
    key = store.entry_key("slow", {"n": 1}, "fp32")
    assert listing(tmp_path / "r") == ["ns", f"ns/{key}", f"ns/{key}/manifest.json", f"ns/{key}/value.json"]


def _write_many(path: str, worker: int, n: int) -> int:
    for i in range(n):
        value = worker * 1000 + i
        _io.save_npz(path, {"a": np.full(2000, value), "b": np.full(500, value)})
    return n


def test_hundreds_of_concurrent_atomic_writes_leave_a_readable_file(tmp_path):
    """300 writes from 6 processes to one path, read all along: every read sees one whole
    file (both arrays from the same write), and no temporary file is left."""
    path = tmp_path / "runs.npz"
    ctx = multiprocessing.get_context("spawn")
    reads = 0
    with ctx.Pool(6) as pool:
        pending = pool.starmap_async(_write_many, [(str(path), w, 50) for w in range(6)])
        while not pending.ready():
            if path.exists():
                with np.load(path) as f:
                    a, b = f["a"], f["b"]
                assert a.shape == (2000,) and (a == a[0]).all() and (b == a[0]).all()
                reads += 1
        assert sum(pending.get()) == 300
    with np.load(path) as f:
        assert f["a"][0] % 1000 == 49  # the last write of some worker
    assert [p.name for p in tmp_path.iterdir()] == ["runs.npz"] and reads > 0


def test_provenance_shows_the_commit_that_computed_each_entry_not_the_current_one(tmp_path):
    """Issue 19 §3: numbers computed by older code must not be shown under the current commit."""
    from sharpmem_lib.provenance import cached_entries_table, provenance_table

    store.clear_entries_used()
    store.cached_json("old", {}, lambda: 1, root=tmp_path)
    (entry,) = tmp_path.iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest.update(commit="a" * 40, dirty=False)  # as if an older checkout had computed it
    manifest["manifest_sha256"] = store._manifest_digest(manifest)
    (entry / "manifest.json").write_text(json.dumps(manifest))
    store.clear_entries_used()
    store.cached_json("old", {}, lambda: pytest.fail("recomputed"), root=tmp_path)
    store.cached_json("new", {}, lambda: 2, root=tmp_path)
    table = cached_entries_table()
    assert list(table["kind"]) == ["old", "new"]
    assert list(table["commit"]) == ["a" * 40, store.code_commit()["commit"]]
    row = provenance_table("test", {}).loc["cached results used", "value"]
    assert "2 entries (cache version %d)" % store.CACHE_VERSION in row and "aaaaaaaaaaaa (1)" in row


def test_a_named_lock_is_the_key_locks_mechanism_and_checks_its_name(tmp_path):
    """store.lock (a stacked group's lock): a file in the namespace while held, removed after;
    a name that is not a plain file name is refused before any folder is made."""
    with store.lock("group-abc", root=tmp_path, namespace="digits"):
        assert [p.name for p in (tmp_path / "digits").iterdir()] == [".group-abc.lock"]
    assert list((tmp_path / "digits").iterdir()) == []
    for bad in ("", "a/b", ".hidden", 3):
        with pytest.raises(ValueError, match=r"name=.* is not valid; it must be a file name"):
            with store.lock(bad, root=tmp_path / "new"):
                pass
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("namespace", ["/tmp/elsewhere", "..", "digits/../../up", 3])
def test_a_namespace_that_escapes_the_results_folder_is_refused(tmp_path, namespace):
    """Hostile tester: store.lock created '<root>/../x' and an absolute namespace's folder."""
    root = tmp_path / "results"
    with pytest.raises(ValueError, match=r"namespace=.* is not valid; it must be a relative folder inside"):
        with store.lock("group-abc", root=root, namespace=namespace):
            pass
    with pytest.raises(ValueError, match=r"namespace=.* is not valid"):
        store.cached_json("k", {}, lambda: 1, root=root, namespace=namespace)
    assert not (tmp_path / "up").exists() and not root.exists()
