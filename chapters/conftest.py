"""nbval 检查各章时的设置（pytest 只对本目录下收集到的 notebook 单元生效）。

nbval 在单元执行完之后，每条输出最多等 5 秒；make test 同时跑两遍 nbval，机器忙时内核的输出偶尔晚到，
就会误报“Timeout of 5 seconds exceeded waiting for output”。单元本身的时限仍由 --nbval-cell-timeout 决定。
"""
OUTPUT_TIMEOUT = 60


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT
