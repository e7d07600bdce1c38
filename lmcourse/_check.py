"""参数检查：出错时抛出指明参数名和错误取值的中文异常。"""
import numbers


def check_type(name, value, types, what):
    """value 不是 types 时抛 TypeError；what 是期望类型的中文说明。"""
    if not isinstance(value, types) or isinstance(value, bool) and bool not in _as_tuple(types):
        raise TypeError(f"参数 {name} 应为{what}，收到 {type(value).__name__}：{value!r:.60}")
    return value


def check_int(name, value, minimum=None, maximum=None):
    """检查整数及其范围。"""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"参数 {name} 应为整数，收到 {type(value).__name__}：{value!r:.60}")
    if minimum is not None and value < minimum:
        raise ValueError(f"参数 {name} 应不小于 {minimum}，收到 {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"参数 {name} 应不大于 {maximum}，收到 {value}")
    return int(value)


def check_number(name, value, minimum=None, maximum=None, strict=False):
    """检查实数及其范围；strict=True 时要求严格大于 minimum。"""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"参数 {name} 应为数值，收到 {type(value).__name__}：{value!r:.60}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = "大于" if strict else "不小于"
        raise ValueError(f"参数 {name} 应{op} {minimum}，收到 {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"参数 {name} 应不大于 {maximum}，收到 {value}")
    return float(value)


def check_choice(name, value, choices):
    """检查取值属于 choices。"""
    if value not in choices:
        raise ValueError(f"参数 {name} 应为 {'、'.join(map(repr, choices))} 之一，收到 {value!r}")
    return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


class Config:
    """配置数据类的共同基类：from_dict 由 JSON 读回的 dict 重建配置（列表转回元组，未知的字段报错）。"""

    @classmethod
    def from_dict(cls, d):
        import dataclasses

        check_type("d", d, dict, "dict")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"参数 d 含有 {cls.__name__} 没有的字段：{'、'.join(map(str, unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def check_cutoffs(cutoffs, vocab_size):
    """自适应 softmax 的分簇边界：严格递增的正整数，都小于字表大小。"""
    check_type("config.cutoffs", cutoffs, (tuple, list), "整数元组")
    last = 0
    for c in cutoffs:
        check_int("config.cutoffs 的元素", c, minimum=last + 1, maximum=vocab_size - 1)
        last = c
    return tuple(cutoffs)
