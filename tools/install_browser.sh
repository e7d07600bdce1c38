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
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "需要 root（或 sudo）才能用 apt-get 安装 chromium 与 fonts-noto-cjk。" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk
echo "已安装：$(/usr/bin/chromium --version)"
