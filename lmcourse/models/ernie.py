"""ERNIE 的两条路。

百度的 ERNIE 1.0（Sun 等，2019）结构就是 BERT，区别只在遮什么：见 lmcourse.objectives.KnowledgeMasking
与 lmcourse.masking.span_mask，检查点 ernie_news 用 lmcourse.models.bert 载入。

清华的 ERNIE（Zhang 等，2019）则改了结构：把知识图谱里训练好的实体向量（TransE）接进编码器。
这里是它的“知识融合”层（论文里的 aggregator）的一份小而完整的草图：
字的一路与实体的一路各做一次多头自注意力，然后在对齐的位置上相加、过 GELU，再各自分开：

    h_j = GELU(W̃_t w̃_j + W̃_e ẽ_k + b̃)      （第 j 个字是实体 k 的第一个字）
    h_j = GELU(W̃_t w̃_j + b̃)                 （第 j 个字没有对齐的实体）
    w_j = GELU(W_t h_j + b_t),  e_k = GELU(W_e h_j + b_e)
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcourse._check import Config, check_int, check_type


@dataclass
class KnowledgeFusionConfig(Config):
    hidden_size: int = 768      # H：字向量的宽度（BERT-base）
    entity_size: int = 100      # E：实体向量的宽度（论文用 100 维的 TransE）
    token_heads: int = 12
    entity_heads: int = 4

    def __post_init__(self):
        for name in ("hidden_size", "entity_size", "token_heads", "entity_heads"):
            check_int(name, getattr(self, name), minimum=1)
        if self.hidden_size % self.token_heads or self.entity_size % self.entity_heads:
            raise ValueError(f"参数 hidden_size / entity_size（{self.hidden_size} / {self.entity_size}）"
                             f"应能被 token_heads / entity_heads（{self.token_heads} / {self.entity_heads}）整除")


def _check_fusion_inputs(tokens, entities, has_entity):
    B, T, _ = tokens.shape
    if entities.shape[:2] != (B, T) or has_entity.shape != (B, T) or has_entity.dtype != torch.bool:
        raise ValueError(f"参数 entities / has_entity 应为 ({B}, {T}, E) / ({B}, {T}) 的布尔张量，"
                         f"收到 {tuple(entities.shape)} / {tuple(has_entity.shape)} {has_entity.dtype}")


class KnowledgeFusion(nn.Module):
    """一层知识融合：输入输出都是 (字的表示 (B, T, H), 实体的表示 (B, T, E))。

    实体的表示按位置对齐：实体 k 的向量放在它第一个字的位置上，has_entity (B, T) 标出这些位置，其余位置的实体向量不用。
    """

    def __init__(self, config):
        super().__init__()
        check_type("config", config, KnowledgeFusionConfig, "KnowledgeFusionConfig")
        H, E = config.hidden_size, config.entity_size
        self.token_attn = nn.MultiheadAttention(H, config.token_heads, batch_first=True)
        self.entity_attn = nn.MultiheadAttention(E, config.entity_heads, batch_first=True)
        self.fuse_token = nn.Linear(H, H)                  # W̃_t、b̃
        self.fuse_entity = nn.Linear(E, H, bias=False)     # W̃_e
        self.out_token = nn.Linear(H, H)                   # W_t、b_t
        self.out_entity = nn.Linear(H, E)                  # W_e、b_e

    def forward(self, tokens, entities, has_entity):
        _check_fusion_inputs(tokens, entities, has_entity)
        w, _ = self.token_attn(tokens, tokens, tokens, need_weights=False)              # (B, T, H) 字看字
        blocked = ~has_entity & has_entity.any(1, keepdim=True)                         # 一个实体都没有的行不挡（结果不用）
        e, _ = self.entity_attn(entities, entities, entities, key_padding_mask=blocked, need_weights=False)
        e = e * has_entity[..., None]                                                   # (B, T, E) 实体只看实体
        h = F.gelu(self.fuse_token(w) + self.fuse_entity(e))                            # (B, T, H) 在对齐处相加
        return F.gelu(self.out_token(h)), F.gelu(self.out_entity(h)) * has_entity[..., None]
