import subprocess

import pytest

from nas.config import Config, ConfigError, apply_overrides, from_dict, load_config
from tests.conftest import ROOT


def test_project_params_load_with_every_section():
    cfg = load_config(ROOT / "params.yaml")
    assert isinstance(cfg, Config)
    for section in ("seed", "data", "space", "supernet", "surrogate", "search", "selection", "evaluation"):
        assert hasattr(cfg, section)
    assert cfg.search.objectives[0] == cfg.search.accuracy_objective == "val_soft_accuracy"


def test_a_search_ranks_on_one_validation_score():
    assert from_dict({}).search.accuracy_objective == "val_accuracy"  # the model's default
    cfg = from_dict({"search": {"objectives": ["params", "val_soft_accuracy"]}})
    assert cfg.search.accuracy_objective == "val_soft_accuracy"
    with pytest.raises(ConfigError, match="one validation score"):
        from_dict({"search": {"objectives": ["val_accuracy", "val_soft_accuracy", "params"]}})
    with pytest.raises(ConfigError, match="one validation score"):
        from_dict({"search": {"objectives": ["params"]}})
    with pytest.raises(ConfigError, match="val_soft_accuracy"):  # a table holds accuracies, no probabilities
        from_dict({"space": {"kind": "nb201"}, "evaluation": {"kind": "table", "table": {"path": "t.csv"}},
                   "search": {"objectives": ["val_soft_accuracy", "params"]}})


def test_override_parses_yaml_values():
    cfg = load_config(ROOT / "params.yaml", ["search.generations=3", "search.objectives=[val_accuracy, flops]",
                                             "search.constraints={max_params: 5000}", "evaluation.scheduler_address=null"])
    assert cfg.search.generations == 3
    assert cfg.search.objectives == ["val_accuracy", "flops"]
    assert cfg.search.constraints == {"max_params": 5000}
    assert cfg.evaluation.scheduler_address is None


def test_overrides_do_not_mutate_input():
    raw = {"search": {"population": 4}}
    out = apply_overrides(raw, ["search.population=8"])
    assert raw["search"]["population"] == 4 and out["search"]["population"] == 8


@pytest.mark.parametrize("raw, needle", [
    ({"search": {"populaton": 3}}, "search.populaton"),
    ({"bogus": 1}, "bogus"),
    ({"search": {"population": "many"}}, "search.population"),
    ({"search": {"population": 0}}, "search.population"),
    ({"search": {"generations": -1}}, "search.generations"),
    ({"search": {"objectives": []}}, "search.objectives"),
    ({"search": {"objectives": ["val_accuracy", "speed"]}}, "speed"),
    ({"search": {"constraints": {"max_speed": 3}}}, "max_speed"),
    ({"search": {"strategy": "hill_climb"}}, "search.strategy"),
    ({"evaluation": {"workers": 0}}, "evaluation.workers"),
    ({"data": {"kind": "npz"}}, "data.path"),
    ({"space": {"kernel_sizes": [3, 4]}}, "kernel_sizes"),
    ({"selection": {"rules": ["coin_flip"]}}, "selection.rules"),
    ({"seed": "abc"}, "seed"),
    ({"space": {"kind": "dag_cell"}, "search": {"strategy": "nsga2"}}, "use one of ['aging', 'random', 'reinforce']"),
    ({"space": {"kind": "rnn_cell"}, "evaluation": {"kind": "inherited"}}, "has no supernet"),
    ({"space": {"kind": "codeepneat"}, "search": {"strategy": "reinforce"}}, "fixed-length genome"),
    ({"space": {"kind": "dag_cell", "dag_cell": {"ops": ["maxpool3x3", "maxpool3x3"]}}}, "must be distinct"),
    ({"space": {"kind": "dag_cell", "dag_cell": {"vertices": 9}}}, "space.dag_cell.vertices"),
])
def test_bad_params_are_rejected_naming_the_key(raw, needle):
    with pytest.raises(ConfigError) as exc:
        from_dict(raw)
    assert needle in str(exc.value)


def test_cell_spaces_resolve_to_evolution_with_stand_alone_training():
    for kind in ("dag_cell", "rnn_cell"):
        cfg = from_dict({"space": {"kind": kind}, "search": {"objectives": ["val_accuracy", "params"]}})
        assert cfg.search.strategy == "aging" and cfg.evaluation.kind == "train"


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(ROOT / "params.yaml", ["search.generations"])


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_cli_rejects_bad_params_with_exit_2_before_work(tmp_path, evonas_bin):
    proc = subprocess.run([evonas_bin, "run", "--params", str(ROOT / "params.yaml"), "--set", "search.populaton=3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "search.populaton" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "artifacts").exists()


def test_cli_rejects_wrong_type_with_exit_2(tmp_path, evonas_bin):
    proc = subprocess.run([evonas_bin, "stage", "search", "--params", str(ROOT / "params.yaml"),
                           "--set", "evaluation.workers=two"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "evaluation.workers" in proc.stderr and "'two'" in proc.stderr


def test_cli_missing_dataset_is_a_clear_error_and_writes_nothing(tmp_path, evonas_bin):
    proc = subprocess.run([evonas_bin, "stage", "prepare", "--params", str(ROOT / "params.yaml"),
                           "--set", "data.kind=npz", "--set", f"data.path={tmp_path / 'missing.npz'}",
                           "--set", f"data.out_dir={tmp_path / 'prepared'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**__import__("os").environ, "PREFECT_HOME": str(tmp_path / ".prefect")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "missing.npz" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("params", ["params.yaml", "examples/omniglot_multitask.yaml", "examples/dag_cell.yaml"])
def test_the_complete_params_load_back_to_the_same_config(params):
    """What `evonas config` writes: every section and key, loading to the same configuration,
    with the user's own choices kept as written (`auto` stays `auto`)."""
    import yaml

    from nas.config import complete_yaml, load_raw

    raw = load_raw(ROOT / params)
    full = yaml.safe_load(complete_yaml(raw, params))
    assert from_dict(full) == load_config(ROOT / params)
    assert set(full) == {f.alias or name for name, f in Config.model_fields.items()}
    assert full["search"]["strategy"] == "auto" and full["evaluation"]["kind"] == raw["evaluation"]["kind"]
    assert set(full["search"]["async"]) >= {"in_flight", "batch"}  # aliases as a params file spells them


def test_config_command_writes_the_file_and_replaces_one_only_with_force(tmp_path, evonas_bin):
    target = tmp_path / "params.yaml"
    target.write_text("mine: 1\n")

    def config(*args):
        return subprocess.run([evonas_bin, "config", "--params", str(ROOT / "params.yaml"), "--out", str(target), *args],
                              capture_output=True, text=True, timeout=120)

    proc = config("--set", "search.generations=3")
    assert proc.returncode == 2 and "--force" in proc.stdout + proc.stderr and target.read_text() == "mine: 1\n"
    proc = config("--set", "search.bogus=3", "--force")
    assert proc.returncode == 2 and "search.bogus" in proc.stdout + proc.stderr and target.read_text() == "mine: 1\n"
    proc = config("--set", "search.generations=3", "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load_config(target).search.generations == 3 and list(tmp_path.iterdir()) == [target]  # no temp file left
