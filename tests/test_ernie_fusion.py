"""清华 ERNIE 的知识融合层草图：形状、对齐、没有实体的字不受实体向量影响、输入检查。"""
import pytest
import torch

from lmcourse.models.ernie import KnowledgeFusion, KnowledgeFusionConfig


def _inputs(B=2, T=6, H=16, E=8):
    g = torch.Generator().manual_seed(0)
    tokens, entities = torch.randn(B, T, H, generator=g), torch.randn(B, T, E, generator=g)
    has = torch.zeros(B, T, dtype=torch.bool)
    has[0, 1] = has[0, 4] = True                      # 第 0 行两个实体，第 1 行没有实体
    return tokens, entities, has


def test_shapes_and_alignment():
    torch.manual_seed(0)
    layer = KnowledgeFusion(KnowledgeFusionConfig(hidden_size=16, entity_size=8, token_heads=4, entity_heads=2)).eval()
    tokens, entities, has = _inputs()
    w, e = layer(tokens, entities, has)
    assert w.shape == tokens.shape and e.shape == entities.shape
    assert torch.isfinite(w).all() and torch.isfinite(e).all()      # 没有实体的一行不出 NaN
    assert (e[~has] == 0).all() and (e[has] != 0).any()


def test_entities_reach_only_aligned_tokens():
    """改动实体向量：对齐位置上的字表示变了，其余位置一点不变（字与字之间的交流在下一层）。"""
    torch.manual_seed(0)
    layer = KnowledgeFusion(KnowledgeFusionConfig(hidden_size=16, entity_size=8, token_heads=4, entity_heads=2)).eval()
    tokens, entities, has = _inputs()
    w1, _ = layer(tokens, entities, has)
    w2, _ = layer(tokens, entities + 1.0, has)
    assert torch.equal(w1[~has], w2[~has])
    assert not torch.allclose(w1[has], w2[has])


def test_bad_inputs():
    with pytest.raises(ValueError, match="hidden_size"):
        KnowledgeFusionConfig(hidden_size=10, token_heads=4)
    with pytest.raises(TypeError, match="config"):
        KnowledgeFusion({"hidden_size": 16})
    layer = KnowledgeFusion(KnowledgeFusionConfig(hidden_size=16, entity_size=8, token_heads=4, entity_heads=2))
    tokens, entities, has = _inputs()
    with pytest.raises(ValueError, match="has_entity"):
        layer(tokens, entities, has.long())
    with pytest.raises(ValueError, match="entities"):
        layer(tokens, entities[:, :3], has)
