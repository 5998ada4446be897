import os
import zipfile

import numpy as np
import pytest

from conftest import UPSTREAM_MATRIX, random_matrix
from semg_hht.io.matrices import MatrixFileError, iter_matrix_batches, list_npz_files, load_matrix


@pytest.mark.skipif(not UPSTREAM_MATRIX.exists(), reason="shared/realdata/upstream-hht is not present")
def test_real_upstream_file_loads_as_float32():
    matrix = load_matrix(UPSTREAM_MATRIX)
    with np.load(UPSTREAM_MATRIX, allow_pickle=False) as archive:
        original = archive["spectrum"]
    assert original.dtype == np.float64
    assert matrix.shape == (256, 256) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, original, rtol=1e-6)


def test_hht_key_is_preferred(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, spectrum=np.zeros((256, 256)), hht=random_matrix(1), time=np.arange(256.0))
    np.testing.assert_array_equal(load_matrix(path), random_matrix(1))


def test_single_2d_array_under_any_name(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, data=random_matrix(2), fs=np.float64(2000), time=np.arange(256.0))
    np.testing.assert_array_equal(load_matrix(path), random_matrix(2))


def test_integer_matrix_is_converted(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, hht=np.arange(65536, dtype=np.int32).reshape(256, 256))
    matrix = load_matrix(path)
    assert matrix.dtype == np.float32 and matrix[255, 255] == 65535


def write_npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, reason",
    [
        ({"hht": np.zeros((128, 128))}, "shape (128, 128)"),
        ({"hht": np.zeros((256, 256, 3))}, "shape (256, 256, 3)"),
        ({"hht": np.zeros(256)}, "shape (256,)"),
        ({"hht": np.full((256, 256), np.nan)}, "NaN or infinite"),
        ({"hht": np.full((256, 256), np.inf)}, "NaN or infinite"),
        ({"hht": np.full((256, 256), 1e39)}, "NaN or infinite"),
        ({"hht": np.zeros((256, 256), dtype=bool)}, "not a real number type"),
        ({"hht": np.zeros((256, 256), dtype=complex)}, "not a real number type"),
        ({"hht": np.full((256, 256), "x")}, "not a real number type"),
        ({"a": np.zeros((256, 256)), "b": np.zeros((256, 256))}, "2 2-D arrays"),
        ({}, "empty"),
    ],
)
def test_bad_content_is_refused_with_reason(tmp_path, arrays, reason):
    path = write_npz(tmp_path, **arrays)
    with pytest.raises(MatrixFileError) as caught:
        load_matrix(path)
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch unpickled_marker",))


def test_object_array_is_refused_without_unpickling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    array = np.empty((256, 256), dtype=object)
    array[0, 0] = _Payload()
    np.savez(tmp_path / "obj.npz", hht=array)
    with pytest.raises(MatrixFileError, match="object array"):
        load_matrix(tmp_path / "obj.npz")
    assert not (tmp_path / "unpickled_marker").exists()


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"hello, world\n", "not an .npz"), (b"\x89PNG\r\n\x1a\n" + b"0" * 64, "not an .npz")],
)
def test_non_archives_are_refused(tmp_path, content, reason):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(MatrixFileError, match=reason):
        load_matrix(path)


def test_truncated_archive_is_refused(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, hht=random_matrix())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MatrixFileError):
        load_matrix(path)


def test_directory_and_missing_file(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(MatrixFileError, match="not a regular file"):
        load_matrix(tmp_path / "dir.npz")
    with pytest.raises(MatrixFileError, match="cannot be read"):
        load_matrix(tmp_path / "missing.npz")


def test_list_is_sorted_and_case_insensitive(tmp_path):
    for name in ("b.npz", "A.NPZ", "c.npy", "a.npz"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_npz_files(tmp_path)] == ["A.NPZ", "a.npz", "b.npz"]


def test_batches_keep_order_and_report_failures(tmp_path):
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.npz"
        if i == 3:
            path.write_text("broken")
        else:
            np.savez(path, hht=random_matrix(i))
        paths.append(path)
    batches = list(iter_matrix_batches(paths, batch_size=3))
    assert [len(b.paths) + len(b.errors) for b in batches] == [3, 3, 1]
    loaded = [p for b in batches for p in b.paths]
    assert loaded == [p for i, p in enumerate(paths) if i != 3]
    assert [e.path for b in batches for e in b.errors] == [str(paths[3])]
    matrices = np.concatenate([b.matrices for b in batches])
    np.testing.assert_array_equal(matrices[3], random_matrix(4))
    assert zipfile.is_zipfile(paths[0])


def test_only_a_leading_or_trailing_channel_axis_is_squeezed(tmp_path):
    path = tmp_path / "mid.npz"
    np.savez(path, hht=random_matrix()[:, None, :])
    with pytest.raises(MatrixFileError, match=r"shape \(256, 1, 256\)"):
        load_matrix(path)
