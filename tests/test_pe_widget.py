"""位置编码浏览器：纯函数画的三幅图与 sinusoidal_encoding 一致；滑块联动；错误参数报错。"""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from lmcourse import widgets
from lmcourse.models.transformer import sinusoidal_encoding


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_figure_shows_matrix_curves_and_similarity():
    fig = widgets.positional_encoding_figure(max_len=20, d_model=16, dims=(0, 1, 7))
    heat, curves, sim = fig.axes[:3]                             # 后面两个是颜色条
    pe = sinusoidal_encoding(20, 16).numpy()
    assert np.allclose(heat.images[0].get_array(), pe)
    lines = curves.get_lines()
    assert len(lines) == 3
    for line, d in zip(lines, (0, 1, 7)):
        assert np.allclose(line.get_ydata(), pe[:, d])
    labels = [t.get_text() for t in curves.get_legend().get_texts()]
    assert labels[0].startswith("第 0 维（sin") and labels[1].startswith("第 1 维（cos")
    assert "周期 6.3" in labels[0]                               # 第 0、1 维的周期是 2π
    assert np.allclose(sim.images[0].get_array(), pe @ pe.T, atol=1e-4)
    assert heat.get_xlabel() == "维度 i" and heat.get_ylabel() == "位置 pos"


def test_similarity_decays_with_distance_in_default_view():
    fig = widgets.positional_encoding_figure()
    s = np.asarray(fig.axes[2].images[0].get_array())
    assert s.shape == (64, 64) and np.allclose(np.diag(s), 64)   # 自己和自己：d_model / 2
    row = s[10]
    assert row[10] > row[11] > row[13] > row[20]


def test_figure_bad_arguments():
    with pytest.raises(ValueError, match="dims"):
        widgets.positional_encoding_figure(d_model=16, dims=(16,))
    with pytest.raises(ValueError, match="dims"):
        widgets.positional_encoding_figure(dims=())
    with pytest.raises(TypeError, match="dims"):
        widgets.positional_encoding_figure(dims=3)
    with pytest.raises(ValueError, match="d_model"):
        widgets.positional_encoding_figure(d_model=15, dims=(0,))
    with pytest.raises(ValueError, match="max_len"):
        widgets.positional_encoding_figure(max_len=1)


def test_explorer_state_is_what_the_front_end_draws():
    box = widgets.positional_encoding_explorer(max_len=32, d_model=64, dims=(4, 40))
    assert box.kind == "positional_encoding" and box.data["base"] == 10000.0
    assert box.view == {"max_len": 32, "d_model": 64, "dim1": 4, "dim2": 40}   # 曲线由浏览器测试对照公式


def test_explorer_bad_arguments():
    with pytest.raises(ValueError, match="d_model"):
        widgets.positional_encoding_explorer(d_model=60)
    with pytest.raises(ValueError, match="dims"):
        widgets.positional_encoding_explorer(dims=(1, 2, 3))
    with pytest.raises(ValueError, match="max_len"):
        widgets.positional_encoding_explorer(max_len=4)
