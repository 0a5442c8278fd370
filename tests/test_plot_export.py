"""branchsim.plot.save: a figure for a paper in one call (format, resolution, atomic write, bad input)."""
from __future__ import annotations

import struct

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402


@pytest.fixture
def fig():
    f, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 0, 2])
    ax.set_title("five-star")
    yield f
    plt.close(f)


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_resolution_scales_the_pixels(fig, tmp_path):
    w1, h1 = _png_size(bp.save(fig, tmp_path / "a.png", dpi=100))
    w2, h2 = _png_size(bp.save(fig, tmp_path / "b.png", dpi=300))
    assert abs(w2 / w1 - 3) < 0.05 and abs(h2 / h1 - 3) < 0.05


@pytest.mark.parametrize("name, fmt, magic", [("f.pdf", None, b"%PDF"), ("f.svg", None, b"<?xml"),
                                              ("f.out", "png", b"\x89PNG"), ("f.EPS", None, b"%!PS")])
def test_format_from_the_suffix_or_named(fig, tmp_path, name, fmt, magic):
    out = bp.save(fig.axes[0], tmp_path / name, format=fmt)              # an Axes: its figure
    assert out.read_bytes()[:len(magic)] == magic
    assert [p.name for p in tmp_path.iterdir()] == [name]               # no temporary file left


@pytest.mark.parametrize("kwargs, words", [
    (dict(path="f.bmpx"), ["suffix", "'f.bmpx'", "allowed", "png"]),
    (dict(path="f.png", format="jpgx"), ["format='jpgx'", "allowed"]),
    (dict(path="f.png", dpi=0), ["dpi", "1 to 10000"]),
    (dict(path="f.png", dpi="300"), ["dpi"]),
    (dict(path="missing/f.png"), ["does not exist"]),
    (dict(path="."), ["is a folder"]),
])
def test_bad_input_is_one_clear_error(fig, tmp_path, kwargs, words):
    kwargs = dict(kwargs, path=tmp_path / kwargs["path"])
    with pytest.raises(bs.BranchsimError) as e:
        bp.save(fig, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_not_a_figure_is_refused(tmp_path):
    with pytest.raises(bs.BranchsimError, match="Figure or Axes, got list"):
        bp.save([1, 2], tmp_path / "f.png")


def test_a_failed_write_leaves_the_old_file(fig, tmp_path, monkeypatch):
    out = tmp_path / "f.png"
    out.write_bytes(b"old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fig, "savefig", full_disk)
    with pytest.raises(bs.BranchsimError):
        bp.save(fig, out)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.png"]
