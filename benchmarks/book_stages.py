"""Where `make book`'s time goes: per chapter and per stage, cold and warm results cache.

Builds the book twice into a scratch folder with a results cache of its own: first empty
(cold: everything trains), then again (warm: everything is read from the cache). For each
chapter it splits the wall time by the kind of cell, read from papermill's per-cell
durations: *compute* cells (training, influence estimates, attacks; tagged
``remove-stderr``), *figures and tables* (``remove-input``), and the rest (imports,
parameters, prose). The last row is the Jupyter Book render. Peak memory is the largest
resident set of this process and its children. On a shared machine wall times scale with the
load, so it also prints the load average before and after and the CPU seconds the build
used (this process and its children), which the load inflates far less.

    python benchmarks/book_stages.py                    # default profile (minutes)
    python benchmarks/book_stages.py --profile smoke    # seconds; what the tests run
    python benchmarks/book_stages.py --fresh-clone      # issue 16's budget: `make book` in a fresh clone

``--units`` times, instead, each non-training step that the cold default book repeats per
target, on one Fashion-MNIST ``fashion_mlp`` SGD target trained into a scratch cache (CPU
seconds on one torch thread, which the machine's load inflates least; wall seconds beside
them): the label-only translation scores (162 queries x the 6,500 attacked points), the NN
attack and the threshold attacks of one split, MemGuard's fit and transform, and the
sharpness measurement (20 power iterations). Multiply by the counts it prints (chapter 3:
train_seeds x 3 targets, x split_seeds for the per-split steps; chapter 4: about 50
attacked (target, weights) pairs, 5 MemGuard, 25 sharpness rows) for a chapter's share.

    python benchmarks/book_stages.py --units            # ~1 min

``--fresh-clone`` measures what issue 16 budgets (cold <= 15 min including the venv, warm
<= 2 min, peak memory < 8 GiB): it clones the repository's committed HEAD into a scratch
folder and times, there, ``make .venv/.installed`` (the venv: pip installs requirements.txt),
then ``make book`` twice (cold: empty ./results; warm), with ``SHARPMEM_RESULTS`` unset so
the clone's own results folder is used. Peak memory is the largest resident set of any one
child process.

Figures, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat

from sharpmem_lib.pipeline import build_book

STAGES = {"remove-stderr": "compute", "remove-input": "figures & tables"}


def cell_stages(executed: Path) -> dict[str, float]:
    """Seconds per stage of one executed notebook, from papermill's cell metadata."""
    nb = nbformat.read(executed, as_version=4)
    out: dict[str, float] = {"compute": 0.0, "figures & tables": 0.0, "other": 0.0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        duration = cell.metadata.get("papermill", {}).get("duration") or 0.0
        stage = next((STAGES[t] for t in cell.metadata.get("tags", []) if t in STAGES), "other")
        out[stage] += float(duration)
    return out


def build(profile: str, root: Path) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    times: dict[str, float] = {}
    start = time.perf_counter()
    build_book(profile, root, log=lambda msg: _collect(msg, times))
    total = time.perf_counter() - start
    notebooks = root / "_build" / "source" / "notebooks"
    stages = {p.stem: cell_stages(p) for p in sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))}
    return times, stages, total


def _collect(msg: str, times: dict[str, float]) -> None:
    if msg.startswith("wall time per stage: "):
        for part in msg.removeprefix("wall time per stage: ").split(", "):
            name, value, _ = part.rsplit(" ", 2)
            times[name] = float(value)


REPO_ROOT = Path(__file__).resolve().parents[1]


def fresh_clone(profile: str, root: Path) -> dict[str, float]:
    """Seconds of the venv, a cold and a warm ``make book`` in a fresh clone of HEAD under ``root``."""
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SHARPMEM_RESULTS", "VIRTUAL_ENV")}
    times = {}
    for stage, target in (("venv", [".venv/.installed"]), ("cold book", ["book", f"PROFILE={profile}"]),
                          ("warm book", ["book", f"PROFILE={profile}"])):
        start = time.perf_counter()
        subprocess.run(["make", *target], cwd=clone, env=env, check=True)
        times[stage] = time.perf_counter() - start
    return times


def unit_costs(dataset: str = "fashion_mnist_cpu", recipe: str = "fashion_mlp") -> dict[str, tuple[float, float]]:
    """(CPU seconds, wall seconds) of each per-target step of chapters 3 and 4, on one torch
    thread, for one SGD target of ``recipe`` trained into a scratch results cache."""
    import numpy as np
    import torch

    from sharpmem_lib.attacks import attack_sets, robustness_scores, run_attacks
    from sharpmem_lib.attacks.label_only import _MEMO
    from sharpmem_lib.data import load_dataset
    from sharpmem_lib.defenses import MemGuard
    from sharpmem_lib.experiments import experiment_config, run_experiment
    from sharpmem_lib.mitigation import SHARPNESS_RHOS
    from sharpmem_lib.privacy import NN_OPTIONS, default_label_only
    from sharpmem_lib.sharpness import model_sharpness
    from sharpmem_lib.splits import make_partition

    torch.set_num_threads(1)
    data = load_dataset(dataset)
    with tempfile.TemporaryDirectory(prefix="sharpmem-units-") as tmp:
        artifact = run_experiment(experiment_config(recipe, dataset, "sgd", 0), tmp, progress=False)
        model, out = artifact.model("final"), artifact.outputs()
    logits = out["logits_final"]
    sets = attack_sets(make_partition(dataset, data, 0), seed=0)
    used = np.unique(np.concatenate([np.asarray(v) for _, v in sets.items()]))
    kind, strengths, repeats = default_label_only(data.X)
    members = np.flatnonzero(out["member"])
    steps = {
        f"label-only {kind} {strengths[0]:g} ({len(used)} points)":
            lambda: (_MEMO.clear(), robustness_scores(model, data.X[used], data.y[used], kind, strengths[0], repeats)),
        "NN attack, one split (both protocols)":
            lambda: run_attacks(sets.take(logits), sets.take(data.y), seed=0, num_classes=data.num_classes,
                                attacks=("nn",), nn_options=NN_OPTIONS["cpu"]),
        "threshold attacks, one split":
            lambda: run_attacks(sets.take(logits), sets.take(data.y), seed=0, num_classes=data.num_classes,
                                attacks=("correctness", "confidence", "entropy", "mentr")),
        "MemGuard fit + transform":
            lambda: MemGuard(seed=0).fit(logits[out["member"]], logits[out["validation"]]).transform(logits),
        f"sharpness, 20 iterations ({len(members)} members)":
            lambda: model_sharpness(model, data.X[members], data.y[members], rhos=SHARPNESS_RHOS, iters=20),
    }
    results = {}
    load_before = os.getloadavg()[0]
    for name, step in steps.items():
        step()  # once untimed: imports and first-call set-up are paid once per build, not per target
        cpu, wall = time.process_time(), time.perf_counter()
        step()
        results[name] = (time.process_time() - cpu, time.perf_counter() - wall)
    print(f"{dataset} / {recipe}, one torch thread; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {os.cpu_count()} CPUs")
    print(f"{'step (per target or split)':50s} {'CPU s':>7s} {'wall s':>7s}")
    for name, (cpu, wall) in results.items():
        print(f"{name:50s} {cpu:7.2f} {wall:7.2f}")
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--fresh-clone", action="store_true",
                        help="time the venv and make book (cold, warm) in a fresh clone of HEAD")
    parser.add_argument("--units", action="store_true",
                        help="CPU seconds per target of each non-training step (label-only, NN attack, ...)")
    args = parser.parse_args(argv)
    if args.units:
        return unit_costs()
    if args.fresh_clone:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="sharpmem-clone-") as tmp:
            times = fresh_clone(args.profile, Path(tmp))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f"profile {args.profile}, fresh clone of HEAD; load average {load_before:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after; {os.cpu_count()} CPUs")
        for stage, seconds in times.items():
            print(f"{stage:26s} {seconds:7.1f} s")
        cold = times['venv'] + times['cold book']
        print(f"{'cold incl. venv':26s} {cold:7.1f} s (issue 16: <= 900 s; warm <= 120 s)")
        print(f"peak resident memory of one process: {peak:.2f} GiB (issue 16: < 8 GiB)")
        return times
    results = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sharpmem-bench-") as tmp:
        os.environ["SHARPMEM_RESULTS"] = str(Path(tmp) / "results")
        for cache in ("cold", "warm"):
            times, stages, total = build(args.profile, Path(tmp) / cache)
            results[cache] = (times, stages, total)
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"profile {args.profile}; seconds (cold = empty results cache, warm = everything cached); load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {os.cpu_count()} CPUs")
    print(f"{'chapter':26s} {'cold':>7s} {'compute':>8s} {'figures':>8s} {'other':>6s} {'warm':>7s}")
    cold_t, cold_s, cold_total = results["cold"]
    warm_t, _, warm_total = results["warm"]
    for name, seconds in cold_t.items():
        s = cold_s.get(name, {})
        cells = (f"{s['compute']:8.1f} {s['figures & tables']:8.1f} {s['other']:6.1f}" if s
                 else f"{'':8s} {'':8s} {'':6s}")
        print(f"{name:26s} {seconds:7.1f} {cells} {warm_t.get(name, float('nan')):7.1f}")
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"{'total (wall)':26s} {cold_total:7.1f} {'':8s} {'':8s} {'':6s} {warm_total:7.1f}")
    print(f"peak resident memory of one process: {peak / 2**20:.2f} GiB")
    print(f"CPU seconds, cold and warm builds together: {cpu:.0f}")
    return results


if __name__ == "__main__":
    main()
