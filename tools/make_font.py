"""生成 lmcourse 自带的中文字体子集（Noto Sans SC，SIL OFL 1.1）。

用法：python tools/make_font.py
来源：npm 包 @expo-google-fonts/noto-sans-sc@0.4.3 中的 NotoSansSC_400Regular.ttf。
覆盖：ASCII、常用标点、GB2312 全部汉字，以及课程数据（人民日报语料、评论语料）
和章节、包源码里出现过的每一个字符。
"""
import glob
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lmcourse" / "fonts"
PACKAGE = "@expo-google-fonts/noto-sans-sc@0.4.3"
MEMBER = "package/400Regular/NotoSansSC_400Regular.ttf"


def gb2312_chars():
    chars = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def course_chars():
    sys.path.insert(0, str(ROOT))
    from lmcourse.data import load_peoples_daily_lines, load_sentiment_raw

    chars = set("".join(load_peoples_daily_lines()))
    for texts in load_sentiment_raw().values():
        chars |= set("".join(texts))
    files = glob.glob(str(ROOT / "chapters" / "*.ipynb")) + glob.glob(str(ROOT / "lmcourse" / "**" / "*.py"), recursive=True)
    for f in files:
        chars |= set(Path(f).read_text(encoding="utf-8"))
    return chars


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tgz = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tgz) as tar:
            font = tar.extractfile(MEMBER).read()
            licence = tar.extractfile("package/LICENSE_FONT").read()
    chars = {chr(c) for c in range(0x20, 0x7F)} | gb2312_chars() | course_chars()
    chars |= set("，。、；：？！“”‘’（）《》【】…—·～　")
    chars |= set("−×÷±≈≠≤≥→←↑↓↔∞√∑∏∂∇∈∉⊂∪∩°′″‰αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ•①②③④⑤")  # 坐标轴和公式常用符号
    text = "".join(sorted(c for c in chars if c.isprintable()))
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    font_obj = subset.load_font(io.BytesIO(font), options)
    sub = subset.Subsetter(options)
    sub.populate(text=text)
    sub.subset(font_obj)
    OUT.mkdir(parents=True, exist_ok=True)
    subset.save_font(font_obj, str(OUT / "NotoSansSC-Subset.ttf"), options)
    (OUT / "OFL.txt").write_bytes(licence)
    info = {"source": PACKAGE, "member": MEMBER, "characters": len(text)}
    (OUT / "SOURCE.txt").write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    size = (OUT / "NotoSansSC-Subset.ttf").stat().st_size
    print(f"{len(text)} 个字符，{size / 1e6:.1f} MB -> {OUT}")


if __name__ == "__main__":
    main()
