"""注意力浏览器：纯函数（画图、算权重）和 ipywidgets 包装。matplotlib 用 Agg 后端（见 conftest.py）。"""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from lmcourse import widgets

TOKENS = list("中国人民")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def rows(T=4, H=2, L=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(L, H, T, T, generator=g), -1)


def test_as_weights4d_shapes():
    assert widgets.as_weights4d(torch.ones(4, 4)).shape == (1, 1, 4, 4)
    assert widgets.as_weights4d(np.ones((2, 4, 5))).shape == (1, 2, 4, 5)
    assert widgets.as_weights4d(rows()).shape == (3, 2, 4, 4)
    with pytest.raises(ValueError, match="weights.*\\(4,\\)"):
        widgets.as_weights4d(torch.ones(4))
    with pytest.raises(TypeError, match="weights.*list"):
        widgets.as_weights4d([[1.0]])


def test_attention_figure_draws_heatmap_and_row():
    w = rows()
    fig = widgets.attention_figure(w, TOKENS, layer=2, head=1, query=3)
    heat, bars = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in heat.get_xticklabels()] == TOKENS
    assert [t.get_text() for t in heat.get_yticklabels()] == TOKENS
    assert np.allclose(heat.images[0].get_array(), w[2, 1].numpy())
    heights = [p.get_height() for p in bars.patches]
    assert np.allclose(heights, w[2, 1, 3].numpy())
    assert "民" in bars.get_title() and "第 2 层" in heat.get_title()


def test_attention_figure_cross_attention_labels():
    w = torch.softmax(torch.randn(2, 3, 5), -1)  # (H, Tq, Tk)
    fig = widgets.attention_figure(w, list("你好吗"), key_tokens=list("我很好谢谢"), head=1, query=2)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("我很好谢谢")
    assert len(fig.axes[1].patches) == 5


@pytest.mark.parametrize("bad", [list("中国人"), list("中国人民万岁")])
def test_wrong_label_length_raises(bad):
    with pytest.raises(ValueError, match="tokens.*4"):
        widgets.attention_figure(rows(), bad)
    with pytest.raises(ValueError, match="key_tokens.*4"):
        widgets.attention_figure(rows(), TOKENS, key_tokens=bad)


def test_out_of_range_choices_raise():
    with pytest.raises(ValueError, match="layer"):
        widgets.attention_figure(rows(), TOKENS, layer=3)
    with pytest.raises(ValueError, match="head"):
        widgets.attention_figure(rows(), TOKENS, head=2)
    with pytest.raises(ValueError, match="query"):
        widgets.attention_figure(rows(), TOKENS, query=4)
    with pytest.raises(TypeError, match="tokens"):
        widgets.attention_figure(rows(), 42)


def test_viz_heatmap_checks_label_length():
    from lmcourse import viz

    with pytest.raises(ValueError, match="xlabels"):
        viz.heatmap(np.ones((2, 3)), xlabels=["a", "b"])
    with pytest.raises(ValueError, match="ylabels"):
        viz.heatmap(np.ones((2, 3)), ylabels=["a", "b", "c"])


@pytest.mark.parametrize("kind", ["dot", "scaled_dot", "general", "additive"])
def test_char_attention_rows_are_distributions(kind):
    tokens, w = widgets.char_attention("中国人民1998年", kind=kind, num_heads=4)
    assert tokens == list("中国人民1998年") and w.shape == (1, 4, 9, 9)
    assert torch.allclose(w.sum(-1), torch.ones(1, 4, 9), atol=1e-5) and (w >= 0).all()
    again = widgets.char_attention("中国人民1998年", kind=kind, num_heads=4)[1]
    assert torch.equal(w, again)  # 固定种子：结果可复现


def test_char_attention_temperature_and_heads():
    _, cold = widgets.char_attention("北京上海广州", temperature=0.05, num_heads=1)
    _, hot = widgets.char_attention("北京上海广州", temperature=50.0, num_heads=1)
    assert cold.max(-1).values.min() > 0.9  # 温度低：几乎只看一个字（它自己）
    assert (hot - 1 / 6).abs().max() < 0.05  # 温度高：接近均匀
    _, w8 = widgets.char_attention("北京上海广州", num_heads=8)
    assert w8.shape == (1, 8, 6, 6)
    with pytest.raises(ValueError, match="num_heads=5"):
        widgets.char_attention("北京", num_heads=5)
    with pytest.raises(ValueError, match="kind"):
        widgets.char_attention("北京", kind="cosine")
    with pytest.raises(ValueError, match="text"):
        widgets.char_attention("")
    with pytest.raises(ValueError, match="temperature"):
        widgets.char_attention("北京", temperature=0)


def test_attention_view_with_function_and_tensor():
    fig = widgets.attention_view(widgets.char_attention, text="中国人民", head=2, query=1, kind="dot")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == TOKENS
    w = widgets.char_attention("中国人民", kind="dot")[1]
    assert np.allclose(fig.axes[0].images[0].get_array(), w[0, 2].numpy())
    fig2 = widgets.attention_view(rows(), tokens=TOKENS, layer=1)
    assert np.allclose(fig2.axes[0].images[0].get_array(), rows()[1, 0].numpy())
    with pytest.raises(ValueError, match="tokens"):
        widgets.attention_view(rows())


def test_explorer_with_texts_and_controls():
    import ipywidgets as W

    texts = ["中国人民", "北京是中国的首都"]
    box = widgets.attention_explorer(widgets.char_attention, texts=texts,
                                     controls={"kind": ["scaled_dot", "dot"], "temperature": (0.5, 2.0, 0.5)})
    assert isinstance(box, W.interactive)
    named = {w.description: w for w in box.kwargs_widgets if hasattr(w, "description")}
    assert {"句子", "层", "头", "query 位置", "kind", "temperature"} <= set(named)
    assert named["头"].max == 3 and named["层"].disabled and named["query 位置"].max == 3
    named["句子"].value = texts[1]  # 换成长句：query 的上限跟着变
    assert named["query 位置"].max == len(texts[1]) - 1
    named["query 位置"].value = 6
    named["句子"].value = texts[0]  # 换回短句：query 被夹到句长之内
    assert named["query 位置"].value == 3 and named["query 位置"].max == 3
    named["kind"].value = "dot"
    named["头"].value = 2


def test_explorer_with_tensor_of_trained_weights():
    import ipywidgets as W

    box = widgets.attention_explorer(rows(T=4, H=2, L=3), tokens=TOKENS, query=9)
    named = {w.description: w for w in box.kwargs_widgets if hasattr(w, "description")}
    assert named["层"].max == 2 and named["头"].max == 1 and named["query 位置"].value == 3
    named["层"].value = 2
    temp = W.FloatSlider(value=1.0, min=0.1, max=2.0, description="温度")
    box2 = widgets.attention_explorer(widgets.char_attention, texts=["中国"], controls={"temperature": temp})
    assert temp in box2.kwargs_widgets and temp.description == "温度"


def test_explorer_bad_arguments():
    with pytest.raises(TypeError, match="texts"):
        widgets.attention_explorer(widgets.char_attention)
    with pytest.raises(ValueError, match="texts"):
        widgets.attention_explorer(widgets.char_attention, texts=[])
    with pytest.raises(TypeError, match="controls"):
        widgets.attention_explorer(widgets.char_attention, texts=["中国"], controls=["kind"])
    with pytest.raises(ValueError, match="tokens"):
        widgets.attention_explorer(rows())


def _tiny_gpt():
    from lmcourse.models.gpt import GPT, GPTConfig
    from lmcourse.text import CharTokenizer

    tok = CharTokenizer.from_texts(["中国人民银行发布公告", "今天天气很好"])
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2, dropout=0.0)), tok


def test_next_token_distribution_marks_what_top_k_and_top_p_keep():
    model, tok = _tiny_gpt()
    rows_all = widgets.next_token_distribution(model, tok, "中国", show=10)
    assert len(rows_all) == 10 and all(k for _, _, k in rows_all)
    probs = [p for _, p, _ in rows_all]
    assert probs == sorted(probs, reverse=True)
    rows_k = widgets.next_token_distribution(model, tok, "中国", top_k=3, show=10)
    assert [k for _, _, k in rows_k] == [True] * 3 + [False] * 7
    rows_p = widgets.next_token_distribution(model, tok, "中国", top_p=1e-6, show=10)
    assert sum(k for _, _, k in rows_p) == 1 and rows_p[0][2]
    with pytest.raises(ValueError, match="temperature"):
        widgets.next_token_distribution(model, tok, "中国", temperature=0)
    with pytest.raises(ValueError, match="prompt"):
        widgets.next_token_distribution(model, tok, "")


def test_sampling_figure_and_explorer_callback():
    model, tok = _tiny_gpt()
    fig = widgets.sampling_figure(model, tok, "中国", temperature=0.7, top_k=5, length=8, show=12)
    bars = fig.axes[0].patches
    assert len(bars) == 12 and sum(b.get_facecolor()[:3] != (0.8, 0.8, 0.8) for b in bars) == 5
    assert "续写" in fig.texts[0].get_text()
    w = widgets.sampling_explorer(model, tok, ["中国", "今天"], length=5)
    w.kwargs_widgets[1].value = 0.5           # 温度
    w.kwargs_widgets[2].value = 3             # top-k
    w.update()
    assert w.result is None and len(w.kwargs_widgets) == 5
    w.kwargs_widgets[0].value = "人民"         # 自己输入的提示
    w.update()
    w.kwargs_widgets[0].value = ""             # 空提示：给出提示语，不报错
    w.update()
    with pytest.raises(ValueError, match="prompts"):
        widgets.sampling_explorer(model, tok, [])


def test_permutation_figure_and_explorer_callback():
    fig = widgets.permutation_figure("我爱纽约", [2, 0, 3, 1], position=1)
    content, query = (ax.images[0].get_array() for ax in fig.axes[:2])
    assert content[1].tolist() == [1, 1, 1, 1] and query[1].tolist() == [1, 0, 1, 1]   # “爱”最后预测
    assert query[2].sum() == 0 and content[2].tolist() == [0, 0, 1, 0]                  # “纽”第一个预测
    assert "纽 → 我 → 约 → 爱" in fig._suptitle.get_text()
    fig = widgets.permutation_figure("我爱纽约", [2, 0, 3, 1], num_predict=2)             # 只预测“约”“爱”
    query = fig.axes[1].images[0].get_array()
    assert query[:, [0, 2]].sum() == 8 and query[:, [1, 3]].sum() == 1 and "上文" in fig.axes[0].get_yticklabels()[0].get_text()
    w = widgets.permutation_explorer("我爱纽约")
    assert w.kwargs_widgets[0].max == 23
    w.kwargs_widgets[0].value = 7
    w.kwargs_widgets[1].value = 3
    w.kwargs_widgets[2].value = 2
    w.update()
    with pytest.raises(ValueError, match="order"):
        widgets.permutation_figure("我爱", [0, 0])
    with pytest.raises(ValueError, match="tokens"):
        widgets.permutation_explorer("一二三四五六七")
