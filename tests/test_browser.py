"""tools/browser_test.py 自己的测试：在一个小小的假网站上，它必须抓出坏图、死进度条、缺的 Colab / 下载链接。

用真的无头 Chromium（.ci/run 先用 tools/install_browser.sh 装好它）；没装时跳过。
"""
import base64
import importlib.util
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
_spec = importlib.util.spec_from_file_location("browser_test", ROOT / "tools" / "browser_test.py")
bt = importlib.util.module_from_spec(_spec)
sys.modules["browser_test"] = bt          # dataclass 需要在 sys.modules 里找到模块
_spec.loader.exec_module(bt)

DOC = "chapters/01_lm_basics"


def png_1x1() -> bytes:
    """一张 1×1 的合法 PNG。"""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) \
        + chunk(b"IEND", b"")


def make_site(tmp_path: Path, body: str) -> Path:
    """假网站：一页 chapters/01_lm_basics.html，带公式、Colab 链接、下载按钮和 body 里的内容。"""
    html_dir = tmp_path / "html"
    (html_dir / "chapters").mkdir(parents=True)
    (html_dir / "_images").mkdir()
    (html_dir / "_images" / "good.png").write_bytes(png_1x1())
    (html_dir / "_images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (html_dir / "_sources" / "chapters").mkdir(parents=True)
    (html_dir / "_sources" / "chapters" / "01_lm_basics.ipynb").write_text("{}")
    colab = bt.colab_url_for(DOC)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<article class="bd-article">
<p>语言模型 <span class="math notranslate nohighlight">\\(P(x)\\)</span></p>
<a href="{colab}">Colab</a>
<a href="../_sources/chapters/01_lm_basics.ipynb" class="btn btn-download-source-button">下载</a>
<img src="../_images/good.png" alt="好图">
{body}
</article></body></html>"""
    (html_dir / f"{DOC}.html").write_text(page, encoding="utf-8")
    return html_dir


def problems_of(tmp_path, body):
    html_dir = make_site(tmp_path, body)
    _infos, problems = bt.check_pages(html_dir, [DOC], chromium=CHROMIUM, jobs=1)
    return [p for _d, p in problems]


CHROMIUM = bt.find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="没有 Chromium：先运行 bash tools/install_browser.sh")


@needs_chromium
def test_clean_page_passes(tmp_path):
    assert problems_of(tmp_path, "") == []


@needs_chromium
@pytest.mark.parametrize("img", [
    '<img src="../_images/missing.png">',                                          # 文件不存在
    '<img src="../_images/corrupt.png">',                                          # 浏览器解码失败
    '<img src="data:image/png;base64,' + base64.b64encode(b"junk").decode() + '">',  # data: URI 不是图
])
def test_planted_broken_image_fails(tmp_path, img):
    problems = problems_of(tmp_path, img)
    assert len(problems) == 1 and "图片坏了" in problems[0], problems


@needs_chromium
def test_dead_progress_bar_fails(tmp_path):
    bar = '<div class="cell_output docutils container"><div class="output stderr"><pre>  0%|          | 0/400 [00:00&lt;?, ?it/s]</pre></div></div>'
    problems = problems_of(tmp_path, bar)
    assert len(problems) == 1 and "进度条" in problems[0], problems


def test_missing_colab_and_download_links_fail(tmp_path):
    """不开浏览器也能查的部分：链接。"""
    info = bt.PageInfo(loaded=True, math=1)
    problems = bt.check_page(DOC, info, tmp_path)
    assert any("Colab" in p for p in problems) and any("下载" in p for p in problems)


def test_every_chapter_has_a_search_key_term():
    chapters = [d for d in bt.toc_pages() if d.startswith("chapters/")]
    assert chapters and all(d in bt.KEY_TERMS for d in chapters)


def test_chromium_is_installed_where_ci_runs():
    """CI（.ci/run）先装 Chromium：在那里，上面的浏览器测试不能被悄悄跳过。"""
    import os
    if os.environ.get("LMCOURSE_CI") == "1":
        assert CHROMIUM is not None and shutil.which(CHROMIUM)


def test_index_redirect_must_reach_the_root_page(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    assert bt.check_index(tmp_path, ["book/intro"]) == ["index.html 跳到不存在的 book/intro.html"]
    (tmp_path / "book" / "intro.html").write_text("<html></html>")
    assert bt.check_index(tmp_path, ["book/intro"]) == []
    assert len(bt.check_index(tmp_path, ["book/preface"])) == 1
