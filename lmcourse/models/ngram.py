"""基于计数的 n 元语法（n-gram）语言模型：加 k 平滑与插值 Kneser-Ney 平滑。"""
import math
from collections import Counter

import numpy as np

from lmcourse import metrics
from lmcourse._check import check_choice, check_int, check_number


class NGramLM:
    """n 元语法模型，在 id 序列上计数。

    smoothing="add_k"：P(w|h) = (c(h,w)+k) / (c(h)+kV)，k=0 即最大似然估计。
    smoothing="kn"：插值 Kneser-Ney，折扣 d，低阶用"接续计数"，最低一级插值到均匀分布 1/V。
    """

    def __init__(self, n, vocab_size, smoothing="kn", k=1.0, discount=0.75):
        self.n = check_int("n", n, minimum=1, maximum=8)
        self.V = check_int("vocab_size", vocab_size, minimum=2)
        self.smoothing = check_choice("smoothing", smoothing, ("add_k", "kn"))
        self.k = check_number("k", k, minimum=0)
        self.d = check_number("discount", discount, minimum=0, maximum=1, strict=True)
        self.tables = {}  # 阶数 -> {上下文元组: {下一个词: 计数}}

    def fit(self, ids):
        """在一条 id 序列（list 或一维张量）上计数。"""
        ids = _as_list(ids)
        if len(ids) < self.n:
            raise ValueError(f"参数 ids 太短：至少要 {self.n} 个 token，收到 {len(ids)}")
        n = self.n
        grams = Counter(zip(*(ids[i:] for i in range(n))))      # 每个 n 元组出现的次数
        self.tables = {n: _nest(grams)}
        if self.smoothing == "kn":
            # 低阶用接续计数：N1+(• h w) = 有多少种不同的前一个词 x 使 (x, h, w) 出现过
            seen = grams                                        # 键是互不相同的 n 元组
            for order in range(n - 1, 0, -1):
                cont = Counter(g[1:] for g in seen)
                self.tables[order] = _nest(cont)
                seen = cont
        self.totals = {o: {h: sum(c.values()) for h, c in t.items()} for o, t in self.tables.items()}
        return self

    def prob(self, word, context):
        """P(word | context)，context 取最后 n-1 个 token。"""
        context = tuple(_as_list(context))[-(self.n - 1):] if self.n > 1 else ()
        if self.smoothing == "add_k":
            c = self.tables[self.n].get(context, {})
            total = self.totals[self.n].get(context, 0)
            denom = total + self.k * self.V
            return (c.get(word, 0) + self.k) / denom if denom > 0 else 1.0 / self.V
        p = 1.0 / self.V
        for order in range(1, self.n + 1):
            h = context[len(context) - order + 1:] if order > 1 else ()
            c = self.tables[order].get(h)
            if c:
                total = self.totals[order][h]
                p = max(c.get(word, 0) - self.d, 0) / total + self.d * len(c) / total * p
        return p

    def distribution(self, context):
        """下一个 token 在整个字表上的概率向量（numpy，长度 V）。"""
        context = tuple(_as_list(context))[-(self.n - 1):] if self.n > 1 else ()
        if self.smoothing == "add_k":
            p = np.full(self.V, self.k, dtype=float)
            c = self.tables[self.n].get(context, {})
            for w, x in c.items():
                p[w] += x
            return p / p.sum() if p.sum() > 0 else np.full(self.V, 1.0 / self.V)
        p = np.full(self.V, 1.0 / self.V)
        for order in range(1, self.n + 1):
            h = context[len(context) - order + 1:] if order > 1 else ()
            c = self.tables[order].get(h)
            if c:
                total = self.totals[order][h]
                counts = np.zeros(self.V)
                counts[list(c.keys())] = list(c.values())
                p = np.maximum(counts - self.d, 0) / total + self.d * len(c) / total * p
        return p

    def nll(self, ids, start=1):
        """逐个预测每条序列第 start 个及之后的 token（上文不越出本条序列），返回平均负对数似然（自然对数）。

        ids 是一条序列，或若干条（二维张量 / 列表的列表），后者对全部被预测的 token 求平均。
        """
        check_int("start", start, minimum=1)
        rows = _as_list(ids)
        rows = rows if rows and isinstance(rows[0], (list, tuple)) else [rows]
        total, n = 0.0, 0
        for row in rows:
            for i in range(start, len(row)):
                p = self.prob(row[i], row[max(0, i - self.n + 1):i])
                if p <= 0:
                    return math.inf
                total -= math.log(p)
                n += 1
        if n == 0:
            raise ValueError(f"参数 ids 太短：从第 start={start} 个起没有要预测的 token")
        return total / n

    def perplexity(self, ids, start=1):
        """困惑度 exp(平均 NLL)，参数同 nll；出现概率为 0 的 token 时为无穷大。"""
        return metrics.perplexity(self.nll(ids, start))

    def sample(self, context, length, generator=None):
        """从模型里按概率逐个抽样 length 个 token，返回 id 列表。"""
        rng = generator if generator is not None else np.random.default_rng(0)
        out = list(_as_list(context))
        for _ in range(check_int("length", length, minimum=0)):
            out.append(int(rng.choice(self.V, p=self.distribution(out))))
        return out[len(out) - length:]


def _as_list(ids):
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"参数 ids 应为整数列表或一维张量，收到 {type(ids).__name__}")
    return list(ids)


def _nest(grams):
    """{(h..., w): 计数} -> {(h...): {w: 计数}}"""
    table = {}
    for g, c in grams.items():
        table.setdefault(g[:-1], {})[g[-1]] = c
    return table

