"""从零实现的 LSTM（Hochreiter & Schmidhuber，1997；遗忘门见 Gers 等，2000）。

与 torch.nn.LSTM 的接口和参数布局相同（门的顺序 i, f, g, o），权重可以互相载入。
逐时刻的 Python 循环便于阅读和观察门；训练时请用 torch 的融合实现 nn.LSTM（更快：它在 C++ 里跑完整个序列）。
"""
import math

import torch
import torch.nn as nn

from lmcourse._check import check_int, check_type


class LSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=True):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = H = check_int("hidden_size", hidden_size, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=1)
        self.batch_first = check_type("batch_first", batch_first, bool, "布尔值")
        for k in range(num_layers):
            d = input_size if k == 0 else H
            # 四个门的权重上下叠放：[W_i; W_f; W_g; W_o]，与 torch 相同
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(4 * H, d)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(4 * H, H)))
            setattr(self, f"bias_ih_l{k}", nn.Parameter(torch.empty(4 * H)))
            setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.empty(4 * H)))
        for p in self.parameters():  # 与 torch 相同的初始化：U(-1/√H, 1/√H)
            nn.init.uniform_(p, -1 / math.sqrt(H), 1 / math.sqrt(H))

    @classmethod
    def from_torch(cls, ref):
        """由 torch.nn.LSTM 拷贝出一个权重相同的新实例（不支持双向和 proj_size）。"""
        check_type("ref", ref, nn.LSTM, "torch.nn.LSTM")
        if ref.bidirectional or ref.proj_size or not ref.bias:
            raise ValueError("参数 ref 是双向、带 proj_size 或无偏置的 LSTM，这里不支持")
        new = cls(ref.input_size, ref.hidden_size, ref.num_layers, ref.batch_first)
        new = new.to(device=ref.weight_ih_l0.device, dtype=ref.weight_ih_l0.dtype)
        new.load_state_dict(ref.state_dict())
        return new

    def cell(self, x_t, h, c, k):
        """第 k 层的一个时间步。x_t (B, D)，h、c (B, H) -> 新的 h、c，以及四个门的值。"""
        gates = (x_t @ getattr(self, f"weight_ih_l{k}").T + getattr(self, f"bias_ih_l{k}")
                 + h @ getattr(self, f"weight_hh_l{k}").T + getattr(self, f"bias_hh_l{k}"))  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)                     # 各 (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g                                       # 细胞状态：忘掉一部分，写入一部分
        h = o * torch.tanh(c)                                   # 隐藏状态：从细胞状态里读出一部分
        return h, c, {"input": i, "forget": f, "candidate": g, "output": o}

    def forward(self, x, hx=None, return_gates=False):
        """x: (B, T, D)（batch_first=False 时 (T, B, D)）；hx = (h_0, c_0)，各 (num_layers, B, H)。

        返回 (output, (h_n, c_n))，output 为最后一层每个时刻的 h；return_gates=True 时再返回
        每层每个门、细胞状态的逐时刻取值 [{门名: (B, T, H)}, ...]。
        """
        check_type("x", x, torch.Tensor, "torch.Tensor")
        if x.dim() != 3:
            raise ValueError(f"参数 x 应为三维张量 (B, T, D)，收到形状 {tuple(x.shape)}")
        if x.size(-1) != self.input_size:
            raise ValueError(f"参数 x 的最后一维应为 input_size={self.input_size}，收到 {x.size(-1)}")
        if not self.batch_first:
            x = x.transpose(0, 1)                               # (B, T, D)
        B, T, _ = x.shape
        shape = (self.num_layers, B, self.hidden_size)
        if hx is None:
            h0 = c0 = x.new_zeros(shape)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"参数 hx 应为 (h_0, c_0) 二元组，收到 {type(hx).__name__}")
            h0, c0 = hx
            for name, s in (("hx[0]", h0), ("hx[1]", c0)):
                if tuple(s.shape) != shape:
                    raise ValueError(f"参数 {name} 的形状应为 {shape}，收到 {tuple(s.shape)}")
        h_n, c_n, trace = [], [], []
        layer_in = x
        for k in range(self.num_layers):
            h, c, outs, gates = h0[k], c0[k], [], []
            for t in range(T):
                h, c, g = self.cell(layer_in[:, t], h, c, k)
                outs.append(h)
                gates.append(dict(g, cell=c))
            layer_in = torch.stack(outs, dim=1)                 # (B, T, H)，作为下一层的输入
            h_n.append(h)
            c_n.append(c)
            if return_gates:
                trace.append({name: torch.stack([g[name] for g in gates], dim=1) for name in gates[0]})
        out = layer_in if self.batch_first else layer_in.transpose(0, 1)
        result = (out, (torch.stack(h_n), torch.stack(c_n)))
        return result + (trace,) if return_gates else result
