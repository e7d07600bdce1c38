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
