"""构建后的小修补（Sphinx 本地扩展，_config.yml 的 local_extensions 加载）。

sphinx-togglebutton 和 sphinx-thebe 的内联配置脚本在 jupyter-book 1.0.4 生成的每页里各出现两次；
其中 `const THEBE_JS_URL = …` 重复声明，浏览器会报 “Identifier 'THEBE_JS_URL' has already been declared”。
构建结束后，在每个 HTML 文件的 <head> 里只留同一段内联脚本的第一份。
"""
import re
from pathlib import Path

_INLINE = re.compile(r"^\s*<script>[^<]*</script>\s*\n", re.M)


def dedupe_inline_scripts(text):
    head_end = text.find("</head>")
    seen = set()

    def keep_first(m):
        key = m.group(0).strip()
        if key in seen:
            return ""
        seen.add(key)
        return m.group(0)

    return _INLINE.sub(keep_first, text[:head_end]) + text[head_end:] if head_end > 0 else text


def _fix_html(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        fixed = dedupe_inline_scripts(text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _fix_html)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
