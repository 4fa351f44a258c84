import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf

from shared.data import DatasetMissingError, RemoteFile, batched, locate


def closed_local_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a download from it fails at once, with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_file_in_the_data_dir_is_used_as_it_is(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "file.bin").write_bytes(b"mirrored copy, other bytes than the original")
    remote = RemoteFile("demo", "file.bin", url="http://127.0.0.1:9/file.bin", sha256="0" * 64)
    assert locate(remote, tmp_path) == tmp_path / "demo" / "file.bin"


def test_missing_file_offline_names_path_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_OFFLINE", "1")
    remote = RemoteFile("demo", "file.bin", url="https://example.org/file.bin", sha256="ab" * 32)
    with pytest.raises(DatasetMissingError) as error:
        locate(remote, tmp_path)
    message = str(error.value)
    assert str(tmp_path / "demo" / "file.bin") in message
    assert "https://example.org/file.bin" in message and "ab" * 32 in message
    assert "--data-dir" in message and "DATA_OFFLINE" in message


def test_failed_download_is_reported_with_its_cause(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_OFFLINE", raising=False)
    url = f"http://127.0.0.1:{closed_local_port()}/file.bin"
    with pytest.raises(DatasetMissingError, match=r"download from http://127\.0\.0\.1:\d+/file\.bin failed"):
        locate(RemoteFile("demo", "file.bin", url=url), tmp_path)
    assert not (tmp_path / "demo" / "file.bin").exists()


@pytest.fixture
def local_server(tmp_path):
    """Serves tmp_path/served over HTTP on 127.0.0.1 (loopback only)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_is_checked_then_put_in_place(tmp_path, local_server, monkeypatch):
    monkeypatch.delenv("DATA_OFFLINE", raising=False)
    served, base = local_server
    payload = b"dataset bytes" * 100
    (served / "file.bin").write_bytes(payload)
    good = RemoteFile("demo", "file.bin", url=f"{base}/file.bin", sha256=hashlib.sha256(payload).hexdigest())
    data_dir = tmp_path / "data"
    assert locate(good, data_dir) == data_dir / "demo" / "file.bin"
    assert (data_dir / "demo" / "file.bin").read_bytes() == payload

    bad = RemoteFile("demo", "other.bin", url=f"{base}/file.bin", sha256="0" * 64)
    with pytest.raises(DatasetMissingError, match="failed"):
        locate(bad, data_dir)
    assert not (data_dir / "demo" / "other.bin").exists(), "a file failing its checksum is never put in place"


def test_batched_pipeline_batches_shuffles_and_states_sharding():
    data = tf.data.Dataset.from_tensor_slices((np.arange(10), np.arange(10)))
    pipeline = batched(data, 4, shuffle=True, seed=1)
    sizes = [len(x) for x, _ in pipeline.as_numpy_iterator()]
    assert sizes == [4, 4, 2]
    seen = np.concatenate([x for x, _ in pipeline.as_numpy_iterator()])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    policy = pipeline.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    in_order = np.concatenate([x for x, _ in batched(data, 4, shuffle=False, seed=1).as_numpy_iterator()])
    assert list(in_order) == list(range(10))


def test_bucketed_batches_hold_examples_of_similar_length_each_once():
    lengths = np.random.default_rng(0).integers(1, 100, 200)
    data = tf.data.Dataset.from_tensor_slices((lengths, np.arange(200)))
    pipeline = batched(data, 8, shuffle=True, seed=1, bucket_by_length=(lambda n: n, (10, 50)))
    batches = list(pipeline.as_numpy_iterator())
    for x, _ in batches:  # buckets [.., 10), [10, 50), [50, ..)
        assert len(set(np.digitize(x, [10, 50]))) == 1, x
        assert 1 <= len(x) <= 8
    assert sum(len(x) == 8 for x, _ in batches) >= len(batches) - 3  # one short batch a bucket at most
    assert sorted(np.concatenate([i for _, i in batches])) == list(range(200))
