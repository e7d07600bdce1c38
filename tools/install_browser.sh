#!/usr/bin/env bash
# 安装浏览器测试（tools/browser_test.py）所需的无头 Chromium 与中文字体（Debian 软件包，需要 root）。
# 可重复运行：/usr/bin/chromium 已存在且已有 Noto CJK 字体时什么也不做。
set -euo pipefail

if [ -x /usr/bin/chromium ] && ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1; then
    echo "chromium 与 fonts-noto-cjk 已安装，跳过。"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "浏览器测试要 Chromium 和中文字体，本机没有，而这个用户不能装软件包：请以 root 运行 bash tools/install_browser.sh。" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "浏览器测试要 Chromium 和中文字体：这里没有 apt-get，请用系统的包管理器装 chromium 与 Noto CJK 字体。" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk
echo "已安装：$(/usr/bin/chromium --version)"
