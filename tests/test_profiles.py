"""Profiles: keys must be notebooks, YAML errors name the file and line, parameters must exist."""

import pytest

from sharpmem_lib.pipeline import REPO_ROOT
from sharpmem_lib.profiles import chapter_names, load_profile, profile_parameters

PARAMS_DIR = REPO_ROOT / "notebooks" / "params"


def test_chapter_names_are_the_notebooks():
    assert chapter_names(PARAMS_DIR)[:2] == ["00_data_and_models", "01_toy_example"]


def test_every_shipped_profile_names_only_notebooks():
    for name in ("smoke", "default", "paper"):
        assert set(load_profile(name, PARAMS_DIR)) <= set(chapter_names(PARAMS_DIR))


def test_a_key_that_is_not_a_notebook_is_an_error(tmp_path):
    (tmp_path / "typo.yaml").write_text("01_toy_exampel:\n  seeds: 3\n")
    with pytest.raises(ValueError, match=r"typo.yaml: \['01_toy_exampel'\] is not a notebook; .*one of "
                                         r"\['00_data_and_models', '01_toy_example'"):
        load_profile("typo", tmp_path, chapter_names(PARAMS_DIR))


@pytest.mark.parametrize("text, line", [
    ("01_toy_example:\n  seeds: 3\n   rho: 0.1\n", 3),
    ("01_toy_example:\n  hidden: [64, 64\n  seeds: 2\n", 3),
    ("01_toy_example:\n\tseeds: 3\n", 2),
    ("01_toy_example:\n  seeds: 3\n  rho: 0.1\n  seeds: 5\n", 4),  # a repeated key would drop the first
    ("01_toy_example:\n  seeds: 3\n00_data_and_models: {}\n01_toy_example:\n  rho: 1\n", 4),
])
def test_yaml_syntax_error_names_file_and_line(tmp_path, text, line):
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(ValueError, match=rf"broken.yaml: YAML syntax error at line {line}, column \d+"):
        load_profile("broken", tmp_path)


def test_profile_that_is_not_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- 01_toy_example\n")
    with pytest.raises(ValueError, match=r"list.yaml: expected a mapping of notebook name -> parameters"):
        load_profile("list", tmp_path)


def test_unknown_parameter_in_a_profile(tmp_path):
    (tmp_path / "p.yaml").write_text("01_toy_example:\n  seedz: 3\n")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['seedz'\] for notebook '01_toy_example'; "
                                         r"valid parameters are \['rho', 'seeds'\]"):
        profile_parameters("p", tmp_path, "01_toy_example", {"seeds": {}, "rho": {}}, ["01_toy_example"])


def test_yaml_merge_keys_work_and_a_repeat_beside_them_is_still_refused(tmp_path):
    """Hostile tester, session 8: `<<: *anchor` in a profile failed with 'could not determine a
    constructor for the tag ...merge' (the repeated-key loader built the '<<' key itself). A
    merge copies the anchored keys and a key written beside it overrides the copy, as in
    yaml.safe_load; a key written twice is still refused."""
    import yaml

    text = ("01_toy_example: &toy\n  seeds: 3\n  sam_rho: 0.1\n"
            "00_data_and_models:\n  <<: *toy\n  seeds: 2\n  dataset: digits\n")
    (tmp_path / "merged.yaml").write_text(text)
    profile = load_profile("merged", tmp_path, chapter_names(PARAMS_DIR))
    assert profile == yaml.safe_load(text) == {"01_toy_example": {"seeds": 3, "sam_rho": 0.1},
                                                "00_data_and_models": {"seeds": 2, "sam_rho": 0.1, "dataset": "digits"}}
    lists = "01_toy_example: &a {seeds: 3}\n00_data_and_models:\n  <<: [*a, {sam_rho: 0.2, seeds: 9}]\n"
    (tmp_path / "lists.yaml").write_text(lists)  # a list of merges: whichever wins, as in safe_load (papermill's)
    assert load_profile("lists", tmp_path, chapter_names(PARAMS_DIR)) == yaml.safe_load(lists)
    (tmp_path / "twice.yaml").write_text(text + "  seeds: 4\n")
    with pytest.raises(ValueError, match=r"twice.yaml: YAML syntax error at line 8, column 3: 'seeds' is given twice"):
        load_profile("twice", tmp_path, chapter_names(PARAMS_DIR))


def test_a_top_level_x_key_holds_a_merge_anchor_and_is_no_notebook(tmp_path):
    """Hostile tester: book/rerun.md said merge keys work 'as in any YAML file', but a
    top-level anchor section was refused as 'not a notebook'. A key starting with 'x-' holds
    only the anchor; any other unknown key is still refused."""
    text = "x-common: &c {seeds: 3, sam_rho: 0.1}\n01_toy_example:\n  <<: *c\n  seeds: 2\n"
    (tmp_path / "anchored.yaml").write_text(text)
    assert load_profile("anchored", tmp_path, chapter_names(PARAMS_DIR)) == {
        "01_toy_example": {"seeds": 2, "sam_rho": 0.1}}
    (tmp_path / "bare.yaml").write_text(text.replace("x-common", "common"))
    with pytest.raises(ValueError, match=r"\['common'\] is not a notebook"):
        load_profile("bare", tmp_path, chapter_names(PARAMS_DIR))
    (tmp_path / "only.yaml").write_text("x-common: &c {seeds: 3}\n")
    with pytest.raises(ValueError, match="sets no parameter|empty"):
        load_profile("only", tmp_path, chapter_names(PARAMS_DIR))
