"""交互图：纯函数（画图、算权重）和浏览器（anywidget；前端在浏览器测试里查）的数据与检查。matplotlib 用 Agg 后端（见 conftest.py）。"""
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


def _state(widget):
    """网页上 lmc_loader.js 读到的数据：text/html 里的 JSON。"""
    import json
    import re

    html = widget._repr_mimebundle_()[0]["text/html"]
    return json.loads(re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1))


def test_explorer_output_has_widget_view_and_page_data():
    w = widgets.attention_explorer([widgets.attention_example("例", TOKENS, rows())], query=9)
    bundle = w._repr_mimebundle_()[0]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    state = _state(w)
    assert state["kind"] == "attention" and state["view"]["query"] == 3          # query 夹到句长之内
    assert state["data"] == w.data and "export default" in w._esm
    ex = state["data"]["examples"][0]
    assert ex["shape"] == [3, 2, 4, 4] and np.allclose(ex["weights"], rows().flatten().numpy(), atol=5e-5)
    evil = widgets.attention_explorer([widgets.attention_example("</script><b>", TOKENS, rows())])
    assert _state(evil)["data"]["examples"][0]["label"] == "</script><b>"          # 数据里的 </ 被转义


def test_char_attention_scores_give_the_weights_at_every_temperature():
    tokens, s = widgets.char_attention("北京上海广州", kind="general", scores=True)
    for tau in (0.3, 1.0, 2.5):
        _, w = widgets.char_attention("北京上海广州", kind="general", temperature=tau)
        assert torch.allclose(torch.softmax(s / tau, -1).float(), w, atol=1e-6)
    ex = widgets.char_attention_examples("中国人民", kinds=["dot", "additive"])
    assert [e["label"] for e in ex] == ["中国人民｜dot", "中国人民｜additive"] and "scores" in ex[0]


def test_typed_sentence_becomes_a_new_selected_example():
    w = widgets.attention_explorer(widgets.char_attention_examples("中国人民"), compute=widgets.char_attention_examples)
    assert w.data["can_compute"] and len(w.data["examples"]) == 4
    w.request = {"text": "北京是中国的首都", "n": 1}
    assert len(w.data["examples"]) == 8 and w.view["example"] == 4 and w.note == ""
    assert w.data["examples"][4]["tokens"] == list("北京是中国的首都")
    w2 = widgets.attention_explorer(widgets.char_attention_examples("中国"), compute=lambda t: widgets.char_attention_examples(t, kinds=["bad"]))
    w2.request = {"text": "北京", "n": 3}
    assert "kind" in w2.note and len(w2.data["examples"]) == 4                       # 算不了：说明原因，不抛出
    assert not widgets.attention_explorer(widgets.char_attention_examples("中国")).data["can_compute"]


def test_explorer_bad_arguments():
    with pytest.raises(TypeError, match="examples"):
        widgets.attention_explorer(rows())
    with pytest.raises(ValueError, match="examples"):
        widgets.attention_explorer([])
    with pytest.raises(ValueError, match="weights 与 scores"):
        widgets.attention_example("例", TOKENS)
    with pytest.raises(ValueError, match="tokens.*4"):
        widgets.attention_example("例", list("中国人"), rows())
    with pytest.raises(TypeError, match="label"):
        widgets.attention_example(3, TOKENS, rows())


def test_positional_encoding_explorer_state_and_checks():
    w = widgets.positional_encoding_explorer(max_len=32, d_model=64, dims=(4, 40))
    assert w.kind == "positional_encoding" and w.view == {"max_len": 32, "d_model": 64, "dim1": 4, "dim2": 40}
    with pytest.raises(ValueError, match="d_model"):
        widgets.positional_encoding_explorer(d_model=60)
    with pytest.raises(ValueError, match="dims"):
        widgets.positional_encoding_explorer(dims=(1, 2, 3))
    with pytest.raises(ValueError, match="dims"):
        widgets.positional_encoding_explorer(d_model=64, dims=(1, 64))


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


def test_sampling_figure_and_explorer_data():
    model, tok = _tiny_gpt()
    fig = widgets.sampling_figure(model, tok, "中国", temperature=0.7, top_k=5, length=8, show=12)
    bars = fig.axes[0].patches
    assert len(bars) == 12 and sum(b.get_facecolor()[:3] != (0.8, 0.8, 0.8) for b in bars) == 5
    assert "续写" in fig.texts[0].get_text()
    w = widgets.sampling_explorer(model, tok, ["中国", "今天"], show=10)
    assert w.data["itos"] == list(tok.itos) and [p["prompt"] for p in w.data["prompts"]] == ["中国", "今天"]
    logits = torch.tensor(w.data["prompts"][0]["logits"])                  # 前端按它算概率
    want = widgets.next_token_distribution(model, tok, "中国", temperature=0.7, show=10)
    assert np.allclose(torch.softmax(logits / 0.7, -1).topk(10).values.numpy(), [p for _, p, _ in want], atol=1e-3)
    w.request = {"text": "人民", "n": 1}
    assert w.data["prompts"][-1]["prompt"] == "人民" and w.view["prompt"] == 2
    w.request = {"text": "", "n": 2}                                        # 空输入：什么也不做
    assert len(w.data["prompts"]) == 3
    w.view = {**w.view, "prompt": 0, "top_k": 1}
    w.request = {"sample": True, "seed": 3, "n": 3}                          # “续写”：top-k 1 即贪心
    greedy = model.generate(torch.tensor([[tok.sep_id] + tok.encode("中国")]), 30, top_k=1)
    assert w.note == f"续写（种子 3）：中国【{tok.decode(greedy[0, 3:].tolist()).replace('[SEP]', '〈句末〉')}】"
    with pytest.raises(ValueError, match="prompts"):
        widgets.sampling_explorer(model, tok, [])
    with pytest.raises(ValueError, match="show"):
        widgets.sampling_explorer(model, tok, ["中国"], show=0)


def test_permutation_figure_and_explorer_callback():
    fig = widgets.permutation_figure("我爱纽约", [2, 0, 3, 1], position=1)
    content, query = (ax.images[0].get_array() for ax in fig.axes[:2])
    assert content[1].tolist() == [1, 1, 1, 1] and query[1].tolist() == [1, 0, 1, 1]   # “爱”最后预测
    assert query[2].sum() == 0 and content[2].tolist() == [0, 0, 1, 0]                  # “纽”第一个预测
    assert "纽 → 我 → 约 → 爱" in fig._suptitle.get_text()
    fig = widgets.permutation_figure("我爱纽约", [2, 0, 3, 1], num_predict=2)             # 只预测“约”“爱”
    query = fig.axes[1].images[0].get_array()
    assert query[:, [0, 2]].sum() == 8 and query[:, [1, 3]].sum() == 1 and "上文" in fig.axes[0].get_yticklabels()[0].get_text()
    from lmcourse.masking import permutation_masks

    w = widgets.permutation_explorer("我爱纽约")
    assert len(w.data["orders"]) == 24 and w.view["num_predict"] == 4
    o = w.data["orders"].index([2, 0, 3, 1])
    assert w.data["masks"][o][1] == permutation_masks(4, torch.tensor([2, 0, 3, 1]), 2)[0].int().flatten().tolist()
    with pytest.raises(ValueError, match="order"):
        widgets.permutation_figure("我爱", [0, 0])
    with pytest.raises(ValueError, match="tokens"):
        widgets.permutation_explorer("一二三四五六")


def test_two_stream_figure_draws_the_masks_edges():
    """双流连线图：红色箭头正好是 position 每层按两张掩码取键和值的边（起点在上一层），查询流另有一条来自上一层 g 的虚线；
    每支箭头的两端就在它连接的两个方框上，中途不穿过别的方框（不会看起来像从别的方框出发）。"""
    import torch

    from lmcourse.masking import permutation_masks

    order, position, layers = [2, 0, 3, 1], 3, 2
    fig = widgets.two_stream_figure("我爱纽约", order, position=position, layers=layers)
    seen_g = (1 - permutation_masks(4, torch.tensor(order))[0]).bool()[position].tolist()
    want = [set(), set()]
    for m in range(1, layers + 1):
        for j in range(4):
            if seen_g[j] or j == position:
                want[0].add((f"h:{m - 1}:{j}", f"h:{m}:{position}", "-"))
            if seen_g[j]:
                want[1].add((f"h:{m - 1}:{j}", f"g:{m}:{position}", "-"))
        want[1].add((f"g:{m - 1}:{position}", f"g:{m}:{position}", "--"))
    for k, ax in enumerate(fig.axes):
        boxes = {p.get_gid()[5:]: (p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height())
                 for p in ax.patches if (p.get_gid() or "").startswith("node:")}
        red = [a for a in ax.texts if (a.get_gid() or "").startswith("edge:") and a.arrow_patch.get_edgecolor()[0] > 0.7
               and a.arrow_patch.get_edgecolor()[1] < 0.3]
        drawn = set()
        for a in red:
            src, dst = a.get_gid()[5:].split("->")
            drawn.add((src, dst, a.arrow_patch.get_linestyle()))
            (x0, y0), (x1, y1) = a.xyann, a.xy
            for name, (x, y) in ((src, (x0, y0 - 0.21)), (dst, (x1, y1 + 0.21))):   # 两端在所连方框的中心上方 / 下方
                bx0, by0, bx1, by1 = boxes[name]
                assert abs(x - (bx0 + bx1) / 2) < 1e-9 and abs(y - (by0 + by1) / 2) < 1e-9, (name, a.get_gid())
            for t in [i / 50 for i in range(1, 50)]:                                   # 中途不穿过别的方框
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                inside = [n for n, (bx0, by0, bx1, by1) in boxes.items() if bx0 <= x <= bx1 and by0 <= y <= by1]
                assert set(inside) <= {src, dst}, (a.get_gid(), inside)
        assert drawn == want[k], k
    with pytest.raises(ValueError, match="order"):
        widgets.two_stream_figure("我爱", [0, 0], position=0)
    with pytest.raises(ValueError, match="position"):
        widgets.two_stream_figure("我爱", [0, 1], position=2)
