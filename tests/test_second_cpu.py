"""make test 的“第二种 CPU”（tools/second_cpu.py）真能抓到依赖 CPU 的输出。

在临时目录里放一个 notebook：一个单元打印 float32 矩阵乘的全部位数（会随 CPU 的内核变），另一个只打印形状（不会变）。在本机执行并存下输出，再用 make test 的 nbval 参数各跑一遍：本机通过，
第二种 CPU 下恰好是第一个单元对不上。
"""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_tests  # noqa: E402
import second_cpu  # noqa: E402

SETUP = "import torch\ntorch.manual_seed(0)\nx = [torch.randn(n, n) @ torch.randn(n, n) for n in (64, 96, 128)]"
FRAGILE = "print([repr(m.sum().item()) for m in x])        # 每一位都打印：依赖 CPU"
STABLE = "print(len(x), tuple(x[0].shape))                # 与 CPU 无关"


def nbval(path, env):
    return subprocess.run([sys.executable, *run_tests.NBVAL, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(FRAGILE), nbformat.v4.new_code_cell(STABLE)]
    path = tmp_path_factory.mktemp("second_cpu") / "planted.ipynb"
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nbformat.write(nb, path)
    return path


def test_planted_cpu_dependent_float_is_caught(planted):
    native = nbval(planted, {k: v for k, v in os.environ.items() if k not in second_cpu.LEVELS["AVX512"]})
    result = nbval(planted, second_cpu.second_cpu_env())
    assert native.returncode == 0, native.stdout[-3000:]
    # 第二种 CPU 下恰好是打印全部位数的那个单元失败
    assert result.returncode != 0, result.stdout[-3000:]
    assert "1 failed, 2 passed" in result.stdout, result.stdout[-3000:]


def test_second_cpu_env_lowers_the_kernels():
    env = second_cpu.second_cpu_env()
    native = second_cpu.native_capability()
    assert native in ("AVX512", "AVX2") or env["ATEN_CPU_CAPABILITY"] == "default"
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip().upper()
    assert out != native or native == "DEFAULT"
