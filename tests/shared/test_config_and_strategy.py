import json

import pytest

from shared.config import (
    RunConfig,
    UserError,
    check_resume_compatible,
    load_hparams_file,
    parse_hparam_assignment,
    resolve_data_dir,
)
from shared.strategy import global_batch_size, make_strategy, worker_index


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("DATA_DIR")
    assert resolve_data_dir(None).parts[-2:] == (".keras", "datasets")


def test_hparam_assignments_parse_json_values():
    assert parse_hparam_assignment("units=128") == ("units", 128)
    assert parse_hparam_assignment("rate=0.5") == ("rate", 0.5)
    assert parse_hparam_assignment("augment=false") == ("augment", False)
    assert parse_hparam_assignment("cell=gru") == ("cell", "gru")
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_hparam_assignment("units")


def test_hparams_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_hparams_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"bad\.json is not valid JSON"):
        load_hparams_file(str(bad))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match="JSON object"):
        load_hparams_file(str(listed))


def test_resume_needs_the_same_settings(tmp_path):
    saved = RunConfig(project="p", epochs=3).to_json()
    check_resume_compatible(
        saved, RunConfig(project="p", epochs=3, data_dir="/elsewhere").to_json(), tmp_path
    )
    with pytest.raises(UserError, match="epochs: 3 -> 5"):
        check_resume_compatible(saved, RunConfig(project="p", epochs=5).to_json(), tmp_path)


def test_global_batch_is_per_replica_times_replicas():
    assert global_batch_size(64, 2) == 128
    assert global_batch_size(None, 2, global_batch=128) == 128


def test_global_batch_not_divisible_is_a_clear_error():
    with pytest.raises(UserError, match=r"global batch 100 does not divide across 3 replicas.*99 or 102"):
        global_batch_size(None, 3, global_batch=100)
    with pytest.raises(UserError, match="positive"):
        global_batch_size(0, 1)


def test_strategy_names():
    assert make_strategy("one").num_replicas_in_sync == 1
    with pytest.raises(UserError, match="--strategy must be one of"):
        make_strategy("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="TF_CONFIG"):
        make_strategy("multi_worker")


def test_worker_index_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker_index() == (0, True)
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert worker_index() == (1, False)
    with_chief = {**cluster, "chief": ["127.0.0.1:3"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    )
    assert worker_index() == (0, False)
