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
