"""benchmarks/gpu_table.py: the GPU estimate is generated from the profile's real plan and
priced per model by formulas checked here by hand; GPU names are matched exactly."""

import dataclasses
import math
import runpy
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLE = runpy.run_path(str(ROOT / "benchmarks" / "gpu_table.py"))
MEMBERS, VALIDATION, EXAMPLES = 50_000, 1_000, 60_000  # CIFAR's partition (sharpmem_lib.splits)


@pytest.fixture(scope="module")
def plan():
    return TABLE["paper_plan"]()


@pytest.fixture(scope="module")
def wrn_flops():
    return TABLE["forward_flops"]("wrn16_8", "cifar100", "{}")


def by_hand_wrn_hours(wrn_flops, passes, peak, mfu, epochs=200, n=MEMBERS):
    """One CIFAR target by hand: training at mfu x peak, evaluation (validation every epoch,
    every example twice) at 60 % of the H100 SXM's 67 TFLOP/s fp32."""
    train = epochs * n * passes * wrn_flops / (mfu * peak)
    evaluate = (epochs * VALIDATION + 2 * EXAMPLES) * wrn_flops / (0.6 * 67e12)
    return (train + evaluate) / 3600


def test_gpu_names_are_matched_exactly():
    gpu = TABLE["identify_gpu"]
    label = lambda name: getattr(gpu(name), "label", None)  # noqa: E731
    assert label("NVIDIA H100 80GB HBM3") == "H100 SXM"
    assert label("NVIDIA H100 PCIe") == "H100 PCIe"
    assert label("NVIDIA H100 NVL") == "H100 NVL"
    assert label("NVIDIA H200") == "H200 SXM"
    assert label("NVIDIA L4") == "L4" and label("NVIDIA L40") == "L40" and label("NVIDIA L40S") == "L40S"
    assert label("  nvidia  l4 ") == "L4"  # case and spacing aside
    # near names are unknown, never a substring's neighbour
    for name in ("NVIDIA H100", "NVIDIA L4 24GB", "NVIDIA L40SX", "H100", "NVIDIA H100 NVL 2"):
        assert gpu(name) is None, name
    peak = TABLE["datasheet_bf16_peak"]
    assert peak("NVIDIA H100 80GB HBM3") == 989e12 and peak("NVIDIA H100 PCIe") == 756e12
    assert peak("NVIDIA H100 NVL") == 835e12 and peak("NVIDIA L4") == 121e12 and peak("NVIDIA L40") == 181e12
    assert peak("NVIDIA L40S") == 362e12 and peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak("Tesla T4") is None and peak("Tesla V100-SXM2-16GB") is None  # fp16 tensor cores only
    with pytest.raises(ValueError, match="exact device name"):
        TABLE["assumed_rates"]("NVIDIA H100")


def test_the_plan_holds_every_chapters_models(plan):
    """The paper profile's plan, as the chapters build it: Table 1's four datasets with their
    own recipes, chapter 2's targets, chapter 4's sweeps and defenses, LiRA apart."""
    rows = {(j.block, j.what): j for j in plan}
    ch3 = [j for j in plan if j.block.startswith("Ch. 3 targets")]
    purchase = next(j for j in ch3 if "SGD on purchase100" in j.what)
    texas = next(j for j in ch3 if "SGD on texas100" in j.what)
    assert purchase.images == 30 * 19_732 and purchase.steps == 30 * math.ceil(19_732 / 512)  # purchase_fc
    assert texas.images == 20 * 10_000 and texas.steps == 20 * math.ceil(10_000 / 128)  # texas_fc
    # 4 datasets x 3 methods x the profile's seeds, less chapter 0's CIFAR-100 SGD and SAM targets (one cache key)
    params = TABLE["chapter_parameters"]()
    seeds, seeds4 = params["03_privacy_tables"]["train_seeds"], params["04_mitigation"]["train_seeds"]
    assert len(ch3) == 4 * 3 * seeds - 2
    ch0 = [j for j in plan if j.block == "Ch. 0 targets"]
    assert all("3" in j.shared and "4" in j.shared for j in ch0)
    ch2 = [j for j in plan if j.block == "Ch. 2 targets"]
    assert len(ch2) == 3 * 5 and {j.passes for j in ch2} == {3, 6}
    dp = [j for j in plan if j.dpsgd]
    assert len(dp) == seeds4 and dp[0].precision == "fp32" and dp[0].passes == 3
    selena = [j for j in plan if "SELENA" in j.what]
    assert [j.n_models for j in selena] == [25, 1] * seeds4 and selena[0].images == 200 * 30_000  # 15 of 25
    advreg = next(j for j in plan if "AdvReg" in j.what)
    assert advreg.extra_fp32 == 2 and advreg.precision == "bf16-autocast"
    lam = [j for j in plan if j.block.startswith("Ch. 4 lambda")]
    assert len(lam) == 5 * seeds4  # lambda 0 is the SGD target
    assert all(j.passes == 6 and j.precision == "fp32" for j in lam)
    lira = [j for j in plan if j.option == "lira"]
    assert [j.n_models for j in lira] == [params["03_privacy_tables"]["lira_models"]] * 3  # per algorithm
    assert all(0 < j.images < 200 * MEMBERS and j.eval_images > 0 for j in lira)  # a subset each
    hsj = next(j for j in plan if j.kind == "hsj")
    assert hsj.n_examples == 3 * 4 * 500 and hsj.iters == 10  # 3 targets, 4 attack sets of 500
    assert ("Ch. 1 toy example", next(w for b, w in rows if b == "Ch. 1 toy example")) in rows


def test_models_are_priced_per_model_by_hand(plan, wrn_flops):
    rates = TABLE["assumed_rates"]()  # H100 SXM: bf16 at 40 % of 989, fp32 at 60 % of 67 TFLOP/s
    hours = TABLE["hours"]
    sgd = next(j for j in plan if j.block == "Ch. 0 targets" and j.what.startswith("SGD"))
    sam = next(j for j in plan if j.block == "Ch. 0 targets" and j.what.startswith("SAM"))
    assert hours(sgd, rates) == pytest.approx(by_hand_wrn_hours(wrn_flops, 3, 989e12, 0.4))
    assert hours(sam, rates) == pytest.approx(by_hand_wrn_hours(wrn_flops, 6, 67e12, 0.6))
    dp = next(j for j in plan if j.dpsgd)  # fp32, a third of fp32 SGD's images/s
    assert hours(dp, rates) == pytest.approx(by_hand_wrn_hours(wrn_flops, 9, 67e12, 0.6))
    # a small FC net is launch-bound: 2 ms a step
    purchase = next(j for j in plan if "SGD on purchase100" in j.what)
    eval_s = (30 * 5_000 + 2 * 197_324) * purchase.flops / (0.6 * 67e12)
    assert hours(purchase, rates) == pytest.approx((30 * 39 * 0.002 + eval_s) / 3600)
    # HopSkipJump: one example at a time, so its sequential queries scale with one query's latency
    hsj = next(j for j in plan if j.kind == "hsj")
    slow = dataclasses.replace(rates, query_s=2 * rates.query_s)
    batched = hsj.n_examples * TABLE["HSJ_BATCHED"] * wrn_flops / (0.6 * 67e12) / 3600
    assert hours(hsj, slow) - batched == pytest.approx(2 * (hours(hsj, rates) - batched))
    assert hours(hsj, rates) - batched == pytest.approx(hsj.n_examples * TABLE["HSJ_SEQUENTIAL"] * 0.003 / 3600)
    # Carlini-Wagner: per example and iteration, two class gradients with a backward per distinct label
    cw = next(j for j in plan if j.kind == "cw")
    distinct = 100 * (1 - 0.99**256)
    forwards = 10 * 100 * (2 * (1 + 2 * distinct) + 10)
    assert hours(cw, rates) == pytest.approx(6_000 * forwards * wrn_flops / (0.6 * 67e12) / 3600)
    # measured rates replace the assumed ones: a report's images/s price the WRN models exactly
    report = {"wrn_forward_flops_per_image": wrn_flops, "measured": True, "device": {"name": "NVIDIA H200"},
              "train": [{"algorithm": "sgd", "compile": False, "images_per_s": 20_000.0},
                        {"algorithm": "sam", "compile": False, "images_per_s": 2_000.0}],
              "sections": {"eval": {"images_per_s": 30_000.0, "single_image_latency_s": 0.001}}}
    measured = TABLE["rates_from_report"](report)
    eval_h = (200 * VALIDATION + 2 * EXAMPLES) / 30_000 / 3600
    assert hours(sgd, measured) == pytest.approx(200 * MEMBERS / 20_000 / 3600 + eval_h)
    assert hours(sam, measured) == pytest.approx(200 * MEMBERS / 2_000 / 3600 + eval_h)
    assert measured.source["mfu_bf16"].startswith("measured") and measured.source["step_s"].startswith("assumed")


def profile_copy(tmp_path: Path, edit) -> Path:
    """A repository root with the notebooks and profiles, paper.yaml edited by ``edit``."""
    (tmp_path / "notebooks").mkdir()
    for f in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(f, tmp_path / "notebooks" / f.name)
    shutil.copytree(ROOT / "notebooks" / "params", tmp_path / "notebooks" / "params")
    path = tmp_path / "notebooks" / "params" / "paper.yaml"
    profile = yaml.safe_load(path.read_text())
    edit(profile)
    path.write_text(yaml.safe_dump(profile))
    return tmp_path


def test_the_table_follows_the_profiles_seeds(tmp_path, plan):
    """Two more training seeds in chapter 3's profile add every Table 1 target twice more, at
    the same price per model, and nothing else."""
    rates = TABLE["assumed_rates"]()
    seeds = TABLE["chapter_parameters"]()["03_privacy_tables"]["train_seeds"]
    root = profile_copy(tmp_path, lambda p: p["03_privacy_tables"].update(train_seeds=seeds + 2))
    more = TABLE["paper_plan"]("paper", root)
    base, bigger = TABLE["price"](plan, rates), TABLE["price"](more, rates)
    # the price of one seed of Table 1: its seed-0 targets, two of them chapter 0's (shared)
    one_seed = sum(TABLE["hours"](j, rates) for j in plan
                   if j.block.startswith("Ch. 3 targets") or j.block == "Ch. 0 targets") / seeds
    assert bigger.main - base.main == pytest.approx(2 * one_seed)
    assert bigger.lira == pytest.approx(base.lira)
    assert len([j for j in more if j.block.startswith("Ch. 3 targets")]) == 4 * 3 * (seeds + 2) - 2


def test_the_readme_block_is_the_generated_table():
    """README's GPU table is what gpu_table.py generates from the current plan (regenerate it
    with `python benchmarks/gpu_table.py --readme README.md` after changing a profile)."""
    expected = TABLE["render"](TABLE["assumed_rates"](), None)
    assert TABLE["readme_block"](ROOT / "README.md") == expected, (
        "README's gpu-table block is stale: run python benchmarks/gpu_table.py --readme README.md")
