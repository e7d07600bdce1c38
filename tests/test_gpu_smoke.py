"""tools/gpu_smoke.py 的 CPU 这条路：CI 跑它，维护者在 Colab 的 GPU 和多卡机器上跑同一个脚本。"""
import importlib.util
from pathlib import Path


def test_smoke_script_passes_on_this_machine(capsys):
    path = Path(__file__).resolve().parents[1] / "tools" / "gpu_smoke.py"
    spec = importlib.util.spec_from_file_location("gpu_smoke", path)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    assert smoke.main(["--steps", "2"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 15 and all(line.startswith("PASS") for line in lines)   # 7 个模型 × 2 种精度 + 微调
