import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from cifar_helpers import data
from cifar_helpers.data import (CLASS_NAMES, FallbackWarning, load_batches_dir, load_cifar10,
                                load_sample, make_dataset, meta_dict, read_batch, read_meta,
                                stratified_subset, train_val_split)
from cifar_helpers.errors import DataError, DownloadUnavailableError
from cifar_files import RunsCode, batch_dict, write_canonical_dir, write_pickle


@pytest.fixture
def canonical(tmp_path):
    return write_canonical_dir(tmp_path)


def test_canonical_layout_round_trip(canonical):
    folder, arrays = canonical
    loaded = load_cifar10(str(folder))
    expected_train = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert loaded.x_train.shape == (100, 32, 32, 3) and loaded.x_train.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x_train, expected_train)
    np.testing.assert_array_equal(loaded.y_test, arrays["test_batch"][1])
    assert loaded.y_train.shape == (100,) and loaded.class_names == CLASS_NAMES
    assert loaded.source == f"dir:{folder}"


def test_batches_are_contiguous_with_int64_labels(canonical):
    """Batches come back C-contiguous with int64 labels, ready for tf.data."""
    folder, _ = canonical
    images, labels = read_batch(folder / "data_batch_1")
    assert images.flags["C_CONTIGUOUS"] and labels.dtype == np.int64


def test_code_executing_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_pickle(tmp_path / "data_batch_1", {b"data": RunsCode(marker), b"labels": [0]})
    with pytest.raises(DataError, match="data_batch_1.*posix.system|data_batch_1.*os.system"):
        read_batch(evil)
    assert not marker.exists()


def _one_batch(tmp_path, changes):
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    content = {**batch_dict(images, [0, 1, 2, 3]), **changes}
    return write_pickle(tmp_path / "data_batch_1", content)


@pytest.mark.parametrize("changes, message", [
    ({b"data": np.zeros((4, 3000), dtype=np.uint8)}, "shape"),
    ({b"data": np.zeros((4, 3072), dtype=np.float32)}, "uint8"),
    ({b"labels": [0, 1, 2, 10]}, "out of range"),
    ({b"labels": [0, 1, -1, 3]}, "out of range"),
    ({b"labels": [0, 1, 2]}, "4 images but 3 labels"),
    ({b"labels": ["a", "b", "c", "d"]}, "integers"),
    ({b"labels": [0.0, 1.0, 2.0, 3.0]}, "integers"),
])
def test_malformed_batches_are_refused_naming_the_file(tmp_path, changes, message):
    with pytest.raises(DataError, match=message) as error:
        read_batch(_one_batch(tmp_path, changes))
    assert "data_batch_1" in str(error.value)


def test_missing_key_and_non_dict_are_refused(tmp_path):
    with pytest.raises(DataError, match="missing key 'labels'"):
        read_batch(write_pickle(tmp_path / "a", {b"data": np.zeros((1, 3072), np.uint8)}))
    with pytest.raises(DataError, match="expected a dict"):
        read_batch(write_pickle(tmp_path / "b", [1, 2, 3]))


@pytest.mark.parametrize("reader", [read_batch, read_meta])
def test_a_file_larger_than_any_batch_is_refused_before_it_is_read(tmp_path, monkeypatch,
                                                                   reader):
    path = write_pickle(tmp_path / "batches.meta", meta_dict(CLASS_NAMES, 20))
    monkeypatch.setattr(data, "MAX_BATCH_BYTES", path.stat().st_size - 1)  # one byte too many
    opened = []
    monkeypatch.setattr(data, "_RestrictedUnpickler",
                        lambda *args, **kwargs: opened.append(args) or pytest.fail("read"))
    with pytest.raises(DataError, match="batches.meta: file is larger than any CIFAR-10 batch"):
        reader(path)
    assert opened == []


def test_a_file_of_the_largest_size_allowed_is_read(tmp_path, monkeypatch):
    path = write_pickle(tmp_path / "batches.meta", meta_dict(CLASS_NAMES, 20))
    monkeypatch.setattr(data, "MAX_BATCH_BYTES", path.stat().st_size)
    assert read_meta(path) == (CLASS_NAMES, 20)


META_NAMES = [name.encode() for name in CLASS_NAMES]


@pytest.mark.parametrize("changes, message", [
    ({b"label_names": None}, "'label_names' must list 10 class names"),
    ({b"label_names": META_NAMES[:9]}, "'label_names' must list 10 class names"),
    ({b"label_names": META_NAMES + [b"extra"]}, "'label_names' must list 10 class names"),
    ({b"label_names": tuple(META_NAMES)}, "'label_names' must list 10 class names"),
    ({b"label_names": [b"\xff\xfe"] + META_NAMES[1:]}, "class names are not UTF-8 text"),
    ({b"num_cases_per_batch": 0}, "'num_cases_per_batch' must be a positive integer"),
    ({b"num_cases_per_batch": -20}, "'num_cases_per_batch' must be a positive integer"),
    ({b"num_cases_per_batch": 20.0}, "'num_cases_per_batch' must be a positive integer"),
    ({b"num_cases_per_batch": "20"}, "'num_cases_per_batch' must be a positive integer"),
    ({b"num_cases_per_batch": True}, "'num_cases_per_batch' must be a positive integer"),
])
def test_malformed_meta_is_refused_naming_the_file(tmp_path, changes, message):
    content = {**meta_dict(CLASS_NAMES, 20), **changes}
    path = write_pickle(tmp_path / "batches.meta", {k: v for k, v in content.items()
                                                    if v is not None})
    with pytest.raises(DataError, match=re.escape(f"{path}: {message}")):
        read_meta(path)


def test_meta_without_a_batch_size_gives_none_and_text_names(tmp_path):
    content = {**meta_dict(CLASS_NAMES, 20), b"label_names": list(CLASS_NAMES)}
    del content[b"num_cases_per_batch"]
    assert read_meta(write_pickle(tmp_path / "batches.meta", content)) == (CLASS_NAMES, None)


def test_truncated_file_is_refused(canonical):
    folder, _ = canonical
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="data_batch_3: not a valid CIFAR-10 pickle"):
        load_batches_dir(folder)


def test_batch_count_must_match_meta(canonical):
    folder, _ = canonical
    write_pickle(folder / "data_batch_2", batch_dict(np.zeros((5, 32, 32, 3), np.uint8), [1] * 5))
    with pytest.raises(DataError, match="data_batch_2: 5 images, but batches.meta declares 20"):
        load_batches_dir(folder)


def test_missing_files_and_folders_are_reported(canonical, tmp_path):
    folder, _ = canonical
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch: cannot read"):
        load_batches_dir(folder)
    with pytest.raises(DataError, match="not a directory"):
        load_cifar10(str(tmp_path / "nowhere"))


def test_an_archive_or_the_folder_around_the_batches_says_what_to_pass(canonical, tmp_path,
                                                                       monkeypatch):
    folder, arrays = canonical
    inputs = tmp_path / "my input"  # a Kaggle dataset holding only the archive (read-only there)
    inputs.mkdir()
    with tarfile.open(inputs / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-py")
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path / "keras home")
    for given in (inputs / "cifar-10-python.tar.gz", inputs):
        with pytest.raises(DataError, match="extract it into Keras' cache") as refused:
            load_cifar10(str(given))
    command = re.search(r"\((mkdir .*)\), then", str(refused.value)).group(1)
    subprocess.run(command, shell=True, check=True, cwd=inputs)  # pasted, from any folder
    assert np.array_equal(load_cifar10("keras").x_test, arrays["test_batch"][0])
    parent = tmp_path / "extracted"
    shutil.copytree(folder, parent / "cifar-10-batches-py")
    with pytest.raises(DataError, match=f"did you mean {parent / 'cifar-10-batches-py'}"):
        load_cifar10(str(parent))


def test_make_sample_script_cuts_a_balanced_sample_where_it_is_told(tmp_path):
    folder, _ = write_canonical_dir(tmp_path, per_batch=300)
    script = Path(__file__).parents[1] / "scripts" / "make_sample.py"
    out = tmp_path / "sample.npz"
    subprocess.run([sys.executable, str(script), str(folder), "--out", str(out)], check=True,
                   capture_output=True)
    with np.load(out) as sample:  # stratified: as balanced as the (random) source
        assert sample["x_train"].shape == (1000, 32, 32, 3) and len(sample["y_test"]) == 200
        assert sample["y_train"].dtype == np.uint8 and set(sample["y_test"]) == set(range(10))
    refused = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert refused.returncode == 2 and "required: source" in refused.stderr


def test_shipped_sample_is_real_balanced_and_small():
    sample = load_sample()
    assert sample.x_train.shape == (1000, 32, 32, 3) and sample.x_test.shape == (200, 32, 32, 3)
    assert np.bincount(sample.y_train).tolist() == [100] * 10
    assert np.bincount(sample.y_test).tolist() == [20] * 10
    assert data.SAMPLE_PATH.stat().st_size < 4 * 2**20
    assert sample.x_train.std() > 30  # real photos, not a constant placeholder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No Keras cache and no network."""
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path / "no-cache")

    def unreachable(url, timeout):
        raise DownloadUnavailableError(f"cannot reach {url} (test: offline)")
    monkeypatch.setattr(data, "check_reachable", unreachable)


def test_auto_falls_back_to_sample_with_a_visible_warning(offline):
    with pytest.warns(FallbackWarning, match="shipped sample"):
        loaded = load_cifar10("auto")
    assert loaded.source.startswith("sample (fallback") and len(loaded.y_train) == 1000


def test_keras_source_offline_says_what_to_do(offline):
    with pytest.raises(DownloadUnavailableError,
                       match='--data sample \\(data="sample" in load_config'):
        load_cifar10("keras")


@pytest.mark.parametrize("layout", ["cifar-10-batches-py-target/cifar-10-batches-py",  # Keras 3.6+
                                    "cifar-10-batches-py"])  # Keras 3.4-3.5
def test_keras_cache_is_read_with_the_safe_parser(monkeypatch, tmp_path, canonical, layout):
    folder, _ = canonical
    cached = tmp_path / "keras-home" / "datasets" / layout
    shutil.copytree(folder, cached)
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path / "keras-home")
    monkeypatch.setattr(data, "check_reachable", lambda url, timeout: pytest.fail("no cache read"))
    loaded = load_cifar10("keras")
    assert loaded.source == f"keras-cache:{cached}" and len(loaded.y_train) == 100


def test_a_damaged_keras_cache_says_to_delete_it(monkeypatch, tmp_path, canonical):
    folder, _ = canonical
    cached = tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py-target"
    shutil.copytree(folder, cached / "cifar-10-batches-py")
    (cached / "cifar-10-batches-py" / "data_batch_2").unlink()  # an extraction cut off
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path / "keras-home")
    for source in ("keras", "auto"):
        with pytest.raises(DataError, match=r"data_batch_2: cannot read.*cache is damaged: delete "
                                            + str(tmp_path / "keras-home" / "datasets")):
            load_cifar10(source)


@pytest.mark.parametrize("failure, expected", [
    (Exception("URL fetch failure on https://x: None -- timed out"), DownloadUnavailableError),
    (TimeoutError("The read operation timed out"), DownloadUnavailableError),
    (ValueError("Incomplete or corrupted file detected."), DataError),  # checksum mismatch
    (FileNotFoundError("data_batch_3"), DataError),  # an extraction cut off
])
def test_a_failed_keras_download_says_whether_the_network_or_the_files_failed(
        monkeypatch, tmp_path, failure, expected):
    import keras

    def load_data():
        raise failure
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path)
    monkeypatch.setattr(data, "check_reachable", lambda url, timeout: None)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", load_data)
    with pytest.raises(DataError) as raised:
        load_cifar10("keras")
    assert type(raised.value) is expected
    if expected is DataError:  # broken files are not "offline": no fallback to the sample either
        assert "delete" in str(raised.value) and str(tmp_path) in str(raised.value)
        with pytest.raises(DataError, match="delete"):
            load_cifar10("auto")


def test_identity_follows_the_images_not_where_they_were_read(canonical):
    folder, _ = canonical
    from_folder = load_batches_dir(folder)
    cached = load_batches_dir(folder, source="keras-cache:elsewhere")
    assert from_folder.identity == cached.identity != load_sample().identity
    flipped = from_folder._replace(x_test=from_folder.x_test[:, ::-1])
    assert flipped.identity != from_folder.identity


def test_reachability_check_times_out_on_a_silent_server():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts the connection but never answers
        start = time.monotonic()
        with pytest.raises(DownloadUnavailableError, match="cannot reach"):
            data.check_reachable(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=0.5)
        assert time.monotonic() - start < 5


def test_an_unverifiable_certificate_is_not_offline_and_nothing_falls_back(monkeypatch,
                                                                           tmp_path):
    """python.org's Python on macOS trusts no certificates until told to: say so, train nothing
    on the sample or on random weights in its place."""
    import ssl
    import urllib.error
    import urllib.request

    from cifar_helpers import model as model_module
    from cifar_helpers.errors import CertificateError

    def urlopen(request, timeout):
        raise urllib.error.URLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(data, "keras_home", lambda: tmp_path)
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: tmp_path / "w.h5")
    for load in (lambda: load_cifar10("auto"), lambda: model_module.resolve_weights("auto")):
        with pytest.raises(CertificateError, match="Install Certificates.command"):
            load()


def test_stratified_subset_and_split_keep_class_balance():
    y = np.repeat(np.arange(10), 50)
    x = np.arange(len(y))
    x_small, y_small = stratified_subset(x, y, 200, seed=1)
    assert np.bincount(y_small).tolist() == [20] * 10
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x_small, y_small, 0.1, seed=1)
    assert np.bincount(y_val).tolist() == [2] * 10
    assert not set(x_tr) & set(x_val) and len(x_tr) + len(x_val) == 200
    assert stratified_subset(x, y, 0)[0] is x


def test_make_dataset_yields_float_images_and_one_hot_labels():
    x = np.full((5, 32, 32, 3), 7, dtype=np.uint8)
    images, labels = next(iter(make_dataset(x, np.array([0, 1, 2, 3, 9]), batch_size=4)))
    assert images.shape == (4, 32, 32, 3) and images.dtype.name == "float32"
    assert float(images[0, 0, 0, 0]) == 7.0
    assert labels.shape == (4, 10) and labels.numpy().argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_make_dataset_turns_off_autotune_which_stalls_every_epoch_start():
    """With autotune on, `fit` waited up to its sleeping thread's period at each new epoch
    (benchmarks/epoch_start_stall.py). Prefetching stays, with a fixed buffer."""
    ds = make_dataset(np.zeros((4, 32, 32, 3), np.uint8), np.arange(4), batch_size=2)
    assert ds.options().autotune.enabled is False
    assert "PrefetchDataset" in type(ds._input_dataset).__name__
    assert len(list(ds)) == 2


def test_too_small_subsets_and_splits_are_config_errors():
    from cifar_helpers.errors import ConfigError

    y = np.repeat(np.arange(10), 10)
    with pytest.raises(ConfigError, match="subset would hold 5 images"):
        stratified_subset(np.arange(100), y, 5)
    with pytest.raises(ConfigError, match="validation split would hold 6 images"):
        train_val_split(np.arange(60), np.repeat(np.arange(10), 6), 0.1)
    with pytest.raises(ConfigError, match="training split would hold 6 .* smaller validation"):
        train_val_split(np.arange(300), np.repeat(np.arange(10), 30), 0.98)


@pytest.mark.parametrize("n", [91, 95, 99])
def test_a_subset_of_almost_all_images_is_kept_not_refused(n):
    # Fewer than 10 images left out cannot be stratified (sklearn refuses): drop them at random.
    x, y = np.arange(100), np.repeat(np.arange(10), 10)
    x_keep, y_keep = stratified_subset(x, y, n, seed=3)
    assert len(x_keep) == n and len(set(x_keep.tolist())) == n
    np.testing.assert_array_equal(y_keep, y[x_keep])
    np.testing.assert_array_equal(stratified_subset(x, y, n, seed=3)[0], x_keep)
