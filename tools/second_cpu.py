"""“第二种 CPU”：让 PyTorch 在这台机器上换一套浮点内核，模拟读者另一台电脑上的运行。

同样的种子、同样的代码，在指令集不同的 CPU 上训练出的参数会差在最后几位，短训练之后打印的准确率、损失也会跟着变。
nbval 逐字比对存好的输出，所以 make test 把每一章在本机的内核下跑一遍，再在这里给出的内核下跑一遍：两遍都通过，
才说明存下来的文字不依赖执行它的 CPU。

- ATEN_CPU_CAPABILITY：PyTorch 自己的向量化内核（求和、逐元素运算）；
- ONEDNN_MAX_CPU_ISA：oneDNN 的卷积、LSTM、矩阵乘；
- MKL_ENABLE_INSTRUCTIONS：MKL 的 BLAS（矩阵乘）。

本机支持 AVX-512 时降到 AVX2（常见的笔记本和老服务器），只支持 AVX2 时降到 SSE4.2；
其他 CPU（如 ARM）上 PyTorch 只认 default，就用它。
"""
import os
import subprocess
import sys

LEVELS = {
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "AVX2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
FALLBACK = {"ATEN_CPU_CAPABILITY": "default"}


def native_capability(python=sys.executable):
    """本机 PyTorch 实际用的向量指令集（"AVX512"、"AVX2"、"DEFAULT"……），在一个干净的子进程里问。"""
    env = {k: v for k, v in os.environ.items() if k not in LEVELS["AVX512"]}
    out = subprocess.run([str(python), "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().upper()


def second_cpu_env(python=sys.executable):
    """返回一份环境变量：在它下面运行的 PyTorch 用比本机低一档的浮点内核。"""
    return {**os.environ, **LEVELS.get(native_capability(python), FALLBACK)}


def describe(env):
    return " ".join(f"{k}={env[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
                    if k in env)


if __name__ == "__main__":
    print(f"本机：{native_capability()}；第二种 CPU：{describe(second_cpu_env())}")
