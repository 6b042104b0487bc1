"""The one result store behind every cache: content-addressed, checksummed, locked, versioned.

Every cached result of the library (target-model runs, derived attack and sharpness results,
the toy example, the subset models, SELENA's sub-models) is an *entry* of this store::

    <root>/<namespace>/<key>/             the entry: its files and manifest.json
    <root>/<namespace>/<key>.partial/     resumable state of an interrupted computation
    <root>/<namespace>/.<key>.lock        held while the entry is computed (removed after)
    <root>/<namespace>/.<name>.lock       held while several entries are computed together (:func:`lock`)

``key`` is a hash of what determines the result (:func:`entry_key`): the kind of entry, its
configuration, the precision it is computed in (``fp32`` on a CPU, a GPU's mixed precision is
a different number, issue 17 §4) and the integer :data:`CACHE_VERSION`. ``manifest.json`` is
written last and records the configuration, the SHA-256 of every file, the cache version,
and the git commit (with a dirty flag) of the code that computed the entry.

Guarantees (:func:`get_or_compute`):

* **Atomic.** An entry is built in a uniquely named staging folder and renamed into place
  with its manifest already in it; files go through :func:`sharpmem_lib._io.atomic_write`.
  A crash never leaves a half-written entry under its final name.
* **Computed once.** A lock per key (``fcntl.flock``): a second process asking for an entry
  that is being computed waits, then reads it.
* **Verified.** Every read checks the manifest's own checksum, type and fields, every file's checksum, and
  then the caller's loader (npz keys, JSON types, state-dict keys). Anything unreadable or
  malformed is reported with a :class:`CorruptArtifactWarning` and recomputed, never used.
* **Clean failures.** A computation that raises leaves no entry and no staging folder
  behind (only a ``.partial`` folder holding a resumable checkpoint survives, and is used by
  the next attempt). A run that diverged is recorded as such (:class:`DivergedError`), like
  a completed one, and not trained again unless asked.
* **Named I/O errors.** A full disk or a read-only results folder raises ``OSError`` naming
  the path.
* **Visible provenance.** A code change that alters results bumps :data:`CACHE_VERSION`,
  which changes every key; the commit recorded in each entry, and listed by
  :func:`entries_used`, shows which code computed the numbers a chapter shows.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

import sharpmem_lib
from sharpmem_lib._io import atomic_write, from_json, named_os_error, save_npz, to_json

__all__ = ["CACHE_VERSION", "CorruptArtifactWarning", "DivergedError", "Entry", "cached_arrays", "cached_json",
           "clear_entries_used", "code_commit", "entries_used", "entry_key", "get_or_compute", "lock", "results_root"]

#: Bump whenever a code change alters what any cached entry would contain (numbers, files,
#: formats). It is part of every key, so old entries are then simply not found.
#: 1: first explicit version (keys had the package version); entries carry their commit,
#:    precision and checksums; runs whose loss rises or whose accuracy is at chance are
#:    recorded as diverged.
#: 2: the changes merged alongside version 1 that alter results (training precision and
#:    fp32 logits, SWA's averaged weights, the toy example's redesign, attack thresholds,
#:    recipes, Fashion-MNIST's CPU sample): nothing computed by intermediate code is reused.
#: 3: the manifest carries a checksum of itself (``manifest_sha256``), so that a hand-edited
#:    ``meta`` or ``status`` is detected like an edited file; version-2 manifests have none.
#: 4: missing plain targets that differ only by their seed train as one ensemble (the numba
#:    kernel, issue 16): the same seeded procedure in another float32 summation order, which
#:    long runs amplify (fashion_mlp: up to ~10 % of examples change class), so a cold
#:    build's targets are new numbers.
#: 5: stacked models take foreach SGD instead of torch's fused kernel (which updated a tensor's
#:    last elements apart, so a model's numbers depended on its stack) and every stackable target
#:    trains through the kernel, lone ones too: subset models, LiRA models and targets change in
#:    float32 rounding, and each stackable target is now a function of its config alone.
CACHE_VERSION = 5

MANIFEST = "manifest.json"
T = TypeVar("T")


class CorruptArtifactWarning(UserWarning):
    """A cached entry failed its checks (checksum, manifest, format) and is recomputed."""


class DivergedError(FloatingPointError):
    """A computation diverged (non-finite loss, a loss above its start, or chance accuracy).

    Raised when it happens and, from the store's record, whenever the entry is asked for again.
    ``reason`` says what was seen; ``path`` is the entry recording it (``None`` before it is
    recorded). A subclass of ``FloatingPointError``, so callers that catch that keep working.
    """

    def __init__(self, reason: str, path: Path | None = None) -> None:
        self.reason, self.path = reason, path
        super().__init__(reason if path is None else f"recorded in {path}: {reason}")


@dataclass(frozen=True)
class Entry:
    """A complete entry: its folder and its manifest (``manifest["meta"]`` is what the
    computation returned about itself)."""

    path: Path
    manifest: dict

    @property
    def meta(self) -> dict:
        return self.manifest["meta"]

    def file(self, name: str) -> Path:
        return self.path / name


# ----------------------------------------------------------------------------- keys


def results_root(results_dir: str | Path | None = None) -> Path:
    """``results_dir``, else ``$SHARPMEM_RESULTS``, else ``./results``."""
    return Path(results_dir or os.environ.get("SHARPMEM_RESULTS") or "results")


def entry_key(kind: str, config: dict, precision: str) -> str:
    """The key of an entry: a hash of its kind, configuration (JSON data), precision and
    :data:`CACHE_VERSION` (read at call time)."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind={kind!r} is not valid; it must be a non-empty string")
    if not isinstance(precision, str) or not precision:
        raise ValueError(f"precision={precision!r} is not valid; it must be a non-empty string such as 'fp32'")
    try:
        blob = json.dumps({"kind": kind, "config": config, "precision": precision, "cache_version": CACHE_VERSION},
                          sort_keys=True, allow_nan=False)
    except ValueError:  # NaN != NaN: such an entry could never be matched again, and its manifest is not JSON
        raise ValueError(f"config={config!r} is not valid for the store: it holds a NaN or infinite number") from None
    except TypeError as err:  # a tuple key, a set, an object: not JSON data, so not a configuration
        raise ValueError(f"config={config!r} is not valid for the store: {err}; it must be JSON data "
                         "(dicts with string keys, lists, numbers, strings)") from None
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_commit() -> dict:
    """``{"commit": <HEAD of the repository holding the library>, "dirty": <uncommitted
    changes to tracked files>}``; ``"unknown"`` and ``None`` outside a git checkout."""
    here = Path(sharpmem_lib.__file__).resolve().parent
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,  # noqa: E731
                                           timeout=10, check=True).stdout.strip()
        root = run("rev-parse", "--show-toplevel")
        if not (here.is_relative_to(Path(root).resolve())):
            raise OSError("the library is not inside this checkout")
        return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, ValueError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


# ----------------------------------------------------------------------------- what a session used

_USED: dict[str, dict] = {}


def _note_used(entry: Entry) -> None:
    m = entry.manifest
    _USED[str(entry.path)] = {"entry": str(entry.path), "kind": m["kind"], "status": m["status"],
                              "cache_version": m["cache_version"], "precision": m["precision"],
                              "commit": m["commit"], "dirty": m["dirty"], "created": m["created"]}


def entries_used() -> list[dict]:
    """One record per entry this process read or computed, in order of first use: path,
    kind, status, cache version, precision, the commit that computed it (and whether that
    checkout was dirty), when. :mod:`sharpmem_lib.provenance` shows them under a chapter."""
    return list(_USED.values())


def clear_entries_used() -> None:
    _USED.clear()


# ----------------------------------------------------------------------------- reading


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Malformed(Exception):
    """The entry on disk is not a valid entry of this key."""


def _manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest without its own checksum field (canonical strict JSON)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(to_json(body, sort_keys=True).encode()).hexdigest()


def _read_manifest(folder: Path, key: str, expected: tuple) -> dict:
    try:
        manifest = from_json((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise _Malformed(f"{MANIFEST} is unreadable ({err})") from err
    if not isinstance(manifest, dict):
        raise _Malformed(f"{MANIFEST} holds a {type(manifest).__name__}, not an object")
    fields = {"key": str, "kind": str, "status": str, "files": dict, "meta": dict, "cache_version": int,
              "precision": str, "commit": str, "created": str, "config": dict, "manifest_sha256": str}
    for name, kind in fields.items():
        if not isinstance(manifest.get(name), kind):
            raise _Malformed(f"{MANIFEST} field {name!r} is {manifest.get(name)!r}, not a {kind.__name__}")
    if _manifest_digest(manifest) != manifest["manifest_sha256"]:  # meta/status edited by hand
        raise _Malformed(f"{MANIFEST} was edited after it was written (its own checksum does not match)")
    if manifest["key"] != key:
        raise _Malformed(f"{MANIFEST} belongs to key {manifest['key']}, not {key}")
    if (manifest["config"], manifest["precision"], manifest["cache_version"]) != expected:
        raise _Malformed(f"{MANIFEST} records another configuration, precision or cache version than its key's")
    if manifest["status"] not in ("complete", "diverged"):
        raise _Malformed(f"{MANIFEST} has status {manifest['status']!r}")
    return manifest


def _check_files(folder: Path, manifest: dict) -> None:
    unlisted = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST
                      and p.name not in manifest["files"])
    if unlisted:  # a manifest whose checksums were dropped or edited would otherwise vouch for any file
        raise _Malformed(f"file(s) {unlisted} have no checksum in {MANIFEST}")
    for name, digest in manifest["files"].items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise _Malformed(f"file {name} is missing")
        if _sha256(path) != digest:
            raise _Malformed(f"checksum mismatch in {name}")


def _read(folder: Path, key: str, expected: tuple, load: Callable[[Entry], T],
          retry_diverged: bool) -> tuple[bool, T | None]:
    """(True, value) for a valid complete entry; (False, None) if there is none (or a
    diverged one to retry). Raises ``DivergedError`` for a recorded divergence and
    ``_Malformed`` for anything invalid."""
    if not folder.exists():
        return False, None
    manifest = _read_manifest(folder, key, expected)
    entry = Entry(folder, manifest)
    if manifest["status"] == "diverged":
        if retry_diverged:
            return False, None
        _note_used(entry)
        raise DivergedError(str(manifest["meta"].get("error", "diverged")), folder)
    _check_files(folder, manifest)
    try:
        value = load(entry)
    except Exception as err:  # whatever the format's reader raises on a foreign or damaged file
        raise _Malformed(f"{type(err).__name__}: {err}") from err
    _note_used(entry)
    return True, value


# ----------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _key_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` between processes; the lock file is removed on release.

    The check that the locked file is still the one at ``path`` makes removal safe: a process
    that locked a file another one has just removed tries again on the new file.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: fall back to msvcrt, without removal
        yield from _msvcrt_lock(path)
        return
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # its folder was just removed by a failed computation
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        except OSError as err:  # e.g. a read-only results folder
            raise named_os_error(err, path.parent) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # say why we wait, then wait
            print(f"sharpmem: another process is computing {path.parent / path.name[1:-5]}; waiting for it",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _inside(root: Path, namespace: str) -> Path:
    """``root / namespace``, refusing a namespace that would leave the results folder
    (absolute, or with a '..' part): entries and locks stay under ``root``."""
    if not isinstance(namespace, str) or Path(namespace).is_absolute() or ".." in Path(namespace).parts:
        raise ValueError(f"namespace={namespace!r} is not valid; it must be a relative folder inside the results "
                         "folder (not absolute, no '..'), e.g. 'digits'")
    return root / namespace


@contextlib.contextmanager
def lock(name: str, *, root: str | Path | None = None, namespace: str = "") -> Iterator[None]:
    """Hold the store's inter-process lock ``<root>/<namespace>/.<name>.lock`` (the same
    ``fcntl.flock`` mechanism as each entry's key lock), for a computation that stores several
    entries at once: a second process asking for it waits, then finds the entries stored.
    ``name``: a file-name-safe identifier, e.g. an :func:`entry_key` with a prefix."""
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"name={name!r} is not valid; it must be a file name (no folders, not starting with '.')")
    folder = _inside(results_root(root), namespace)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise named_os_error(err, folder) from err
    with _key_lock(folder / f".{name}.lock"):
        yield


def _msvcrt_lock(path: Path):  # pragma: no cover - exercised on Windows only
    import msvcrt
    import time

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield
    finally:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)


# ----------------------------------------------------------------------------- writing


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _install(staging: Path, folder: Path, key: str, kind: str, config: dict, precision: str, status: str,
             meta: dict) -> Entry:
    """Write the manifest into ``staging`` and rename it to ``folder`` (under the key's lock)."""
    files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
    if MANIFEST in files:
        raise ValueError(f"a computation may not write {MANIFEST} itself")
    manifest = {"key": key, "kind": kind, "status": status, "config": config, "precision": precision,
                "cache_version": CACHE_VERSION, **code_commit(),
                "library_version": sharpmem_lib.__version__,
                "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": files, "meta": meta}
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    text = to_json(manifest, indent=1, sort_keys=True)  # strict JSON: a NaN in meta is written explicitly
    atomic_write(staging / MANIFEST, lambda p: p.write_text(text))
    if folder.exists():  # a corrupt or diverged entry being replaced; we hold its lock
        _remove(folder)
    try:
        os.rename(staging, folder)
    except OSError as err:
        raise named_os_error(err, folder) from err
    return Entry(folder, manifest)


def get_or_compute(kind: str, config: dict, compute: Callable[[Path, Path], dict | None],
                   load: Callable[[Entry], T], *, root: str | Path | None = None, namespace: str = "",
                   precision: str = "fp32", retry_diverged: bool = False) -> T:
    """The value of the entry (``kind``, ``config``, ``precision``), computed only if the
    store lacks a valid one.

    ``compute(staging, work)`` writes the entry's files (flat, any names but
    ``manifest.json``) into the folder ``staging`` and returns a JSON-able dict kept in the
    manifest as ``meta``; ``work`` is a folder that survives an interrupted computation (for
    checkpoints) and is removed when the entry is complete. ``load(entry)`` reads the value
    back and raises on anything malformed. If ``compute`` raises ``FloatingPointError`` the
    entry is recorded as diverged and :class:`DivergedError` is raised, then and on every
    later call (``retry_diverged=True`` computes again).

    ``root`` is the results folder (:func:`results_root`), ``namespace`` a sub-folder of it
    (e.g. the dataset). See the module docstring for the guarantees.
    """
    if not isinstance(config, dict):
        raise ValueError(f"config={config!r} is not valid; it must be a dict of JSON data")
    key = entry_key(kind, config, precision)
    expected = (json.loads(json.dumps(config)), precision, CACHE_VERSION)
    folder = _inside(results_root(root), namespace) / key
    # Fast path without the lock: complete entries are immutable once renamed into place.
    try:
        found, value = _read(folder, key, expected, load, retry_diverged)
        if found:
            return value
    except _Malformed:
        pass  # decided again under the lock: it may be in the middle of being replaced
    parent = folder.parent
    created = []  # the folders this call creates, deepest first
    for p in (parent, *parent.parents):
        if p.exists():
            break
        created.append(p)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise named_os_error(err, parent) from err
    try:
        with _key_lock(parent / f".{key}.lock"):
            try:
                found, value = _read(folder, key, expected, load, retry_diverged)
                if found:
                    return value
            except _Malformed as err:
                warnings.warn(f"cached entry {folder} is corrupt ({err}); recomputing it", CorruptArtifactWarning,
                              stacklevel=3)
                _remove(folder)
            return _compute(kind, config, compute, load, key, folder, precision)
    finally:
        for p in created:  # only those still empty: a failed first computation leaves no folder
            with contextlib.suppress(OSError):
                p.rmdir()


def _compute(kind: str, config: dict, compute: Callable[[Path, Path], dict | None], load: Callable[[Entry], T],
             key: str, folder: Path, precision: str) -> T:
    work = folder.with_name(f"{key}.partial")
    for stale in folder.parent.glob(f".{key}.staging-*"):  # left by a killed process; we hold the key's lock
        _remove(stale)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.staging-", dir=folder.parent))
        work.mkdir(exist_ok=True)
    except OSError as err:
        raise named_os_error(err, folder.parent) from err
    try:
        try:
            meta = compute(staging, work) or {}
        except FloatingPointError as err:
            reason = err.reason if isinstance(err, DivergedError) else str(err)
            for p in staging.iterdir():
                _remove(p)
            entry = _install(staging, folder, key, kind, config, precision, "diverged", {"error": reason})
            _note_used(entry)
            _remove(work)  # a diverged run's checkpoint is of no use
            raise DivergedError(reason, folder) from err
        if not isinstance(meta, dict):
            raise TypeError(f"compute() for a {kind!r} entry returned {type(meta).__name__}, not a dict")
        entry = _install(staging, folder, key, kind, config, precision, "complete", meta)
        _remove(work)
    finally:
        _remove(staging)  # gone after a rename; removed after a failure
        with contextlib.suppress(OSError):
            work.rmdir()  # only if empty: a resumable checkpoint stays for the next attempt
    value = load(entry)
    _note_used(entry)
    return value


# ----------------------------------------------------------------------------- common formats


def cached_json(kind: str, config: dict, compute: Callable[[], Any], **store_kwargs) -> Any:
    """A JSON-able value (dict, list, number, string) as an entry: ``value.json``, its type
    recorded and checked on every read (a foreign file of another type is recomputed)."""

    def write(staging: Path, work: Path) -> dict:
        text = to_json(compute())  # strict JSON: NaN/inf written explicitly; numpy scalars as Python numbers
        value = from_json(text)  # what every later read returns: its type is the one recorded
        atomic_write(staging / "value.json", lambda p: p.write_text(text))
        return {"type": type(value).__name__}

    def read(entry: Entry) -> Any:
        value = from_json(entry.file("value.json").read_text())
        if type(value).__name__ != entry.meta.get("type"):
            raise TypeError(f"value.json holds a {type(value).__name__}, the manifest says {entry.meta.get('type')}")
        return value

    return get_or_compute(kind, config, write, read, **store_kwargs)


def cached_arrays(kind: str, config: dict, compute: Callable[[], dict[str, np.ndarray]],
                  **store_kwargs) -> dict[str, np.ndarray]:
    """A dict of numpy arrays as an entry: ``arrays.npz`` (no pickles), the name, dtype and
    shape of every array recorded and checked on every read."""

    def write(staging: Path, work: Path) -> dict:
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        save_npz(staging / "arrays.npz", arrays, compressed=True)
        return {"arrays": {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()}}

    def read(entry: Entry) -> dict[str, np.ndarray]:
        with np.load(entry.file("arrays.npz"), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        seen = {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()}
        if seen != entry.meta.get("arrays"):
            raise ValueError(f"arrays.npz holds {seen}, the manifest says {entry.meta.get('arrays')}")
        return arrays

    return get_or_compute(kind, config, write, read, **store_kwargs)
