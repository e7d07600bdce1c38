"""中文全文搜索的课程词典：构建时从术语表和各章术语生成 jieba 用户词典，并改进查询端的切分。

问题：Sphinx 的中文搜索（sphinx/search/zh.py）建索引时用 jieba.cut_for_search 切词，
jieba 的通用词典不认识“困惑度”“自注意力”“束搜索”“遗忘门”，索引里只有“困惑”+“度”；
浏览器里的查询却不切分中文，整词“困惑度”在索引里找不到，于是一页也搜不到。

做法（本文件是一个 Sphinx 扩展，_config.yml 用 ``sphinx: local_extensions`` 加载它）：

1. 构建开始时（config-inited）从 ``book/notation.md`` 的术语表和每章“加粗并括注英文”的术语
   （本书的体例：术语首次出现时写作 ``**困惑度**（perplexity）``）生成词典，写到
   ``html_search_options["dict"]`` 指定的文件（相对路径相对于书的根目录，默认
   ``_build/search_dict.txt``），并把该项改成绝对路径：从哪个目录运行 jupyter-book 都一样。
   Sphinx 的 SearchChinese.init 用 ``jieba.load_userdict`` 载入它。cut_for_search 对长词
   既输出整词，也输出它在词典里的二字、三字片段（“困惑度”→“困惑”“困惑度”），
   所以整词和片段都能搜到；浏览器端对长于两个字的查询还做子串匹配（“语言模型”能找到
   “掩码语言模型”）。
2. 注册一个替换 ``zh`` 的搜索语言 ``CourseChinese``：
   - 索引保留术语表里的单字术语（键、值、门）；Sphinx 默认丢掉所有单字。
   - 浏览器端的 splitQuery：一个中文片段在索引里找不到（既不是索引词，也不是任何索引词的
     子串）时，按索引词做正向最大匹配切开（“语言模型的困惑度”→“语言模型”“困惑度”）；
     然后去掉索引里不可能有的单字（如“加 k 平滑”里的“加”“k”），否则“每个词都要命中”永远落空。
3. 词典内容变了时（env-get-outdated）重读全部文档，增量构建的索引不会用旧词典的切分。

直接运行 ``python tools/search_dict.py`` 打印词典（``--terms`` 打印术语表的检索词）。
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DICT = "_build/search_dict.txt"

HAN = "\u4e00-\u9fff"
_HAN_RE = re.compile(f"[{HAN}]")
_MATH_RE = re.compile(r"\$[^$]*\$")
_PAREN_RE = re.compile(r"[（(]([^）)]*)[）)]")
# jieba 把连续的汉字、字母、数字（及 +#&._%-）当作一段来切，空格和其他标点把段隔开
_JIEBA_BLOCK_RE = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+")
# 各章的术语：加粗、紧跟括注的英文，加粗部分全是汉字
_CHAPTER_TERM_RE = re.compile(rf"\*\*([{HAN}]{{2,10}})\*\*\s*[（(]\s*[A-Za-z]")


def glossary_rows(text: str) -> list[tuple[str, str]]:
    """notation.md 里“## 术语表”一节的表格行：(英文, 中文)。"""
    part = text.split("## 术语表", 1)
    if len(part) < 2:
        raise ValueError("book/notation.md 里没有“## 术语表”一节")
    rows = []
    for line in part[1].splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or set(cells[0]) <= set("-: ") or cells == ["英文", "中文"]:
            continue
        rows.append((cells[0], cells[1]))
    return rows


def cell_terms(cell: str) -> list[str]:
    """术语表“中文”一栏里的检索词，按书里的写法。

    “遗忘门 / 输入门 / 输出门”分成三个；括注里若是短的纯中文同义词也算
    （“词向量（词嵌入）”→ 词向量、词嵌入；“未登录（词）”→ 未登录、未登录词）；
    括注里是解释或英文（“探针（用简单分类器……）”“核采样（top-p）”）则不算。
    """
    terms = []
    for alt in _MATH_RE.sub("", cell).split("/"):
        parens = _PAREN_RE.findall(alt)
        main = " ".join(_PAREN_RE.sub(" ", alt).split())
        if main:
            terms.append(main)
        for p in parens:
            p = p.strip()
            if re.fullmatch(f"[{HAN}]", p) and main:
                terms.append(main + p)
            elif re.fullmatch(f"[{HAN}]{{2,6}}", p):
                terms.append(p)
    return terms


def glossary_terms(root: Path = ROOT) -> list[str]:
    """术语表的全部中文检索词（去重，保持表中顺序）。"""
    text = (root / "book" / "notation.md").read_text(encoding="utf-8")
    out = []
    for _en, zh in glossary_rows(text):
        out.extend(t for t in cell_terms(zh) if t not in out)
    return out


def chapter_terms(notebook: Path) -> list[str]:
    """一章里“加粗并括注英文”的纯中文术语（去重，保持出现顺序）。"""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        out.extend(t for t in _CHAPTER_TERM_RE.findall(src) if t not in out)
    return out


def dict_words(terms) -> list[str]:
    """把检索词变成 jieba 用户词典里的词：jieba 会当作一段来切的、含汉字的片段。

    多字片段要至少两个字；单字术语（键、值、门）原样收下，CourseChinese 据此在索引里保留它们。
    """
    words = []
    for term in terms:
        blocks = _JIEBA_BLOCK_RE.findall(term)
        for b in blocks:
            if not _HAN_RE.search(b):
                continue
            if len(b) >= 2 or len(blocks) == 1:
                if b not in words:
                    words.append(b)
    return words


def course_terms(root: Path = ROOT) -> list[str]:
    """词典的来源：术语表的检索词，加上每章（chapters/*.ipynb）加粗括注英文的术语。"""
    terms = glossary_terms(root)
    for nb in sorted((root / "chapters").glob("*.ipynb")):
        terms.extend(t for t in chapter_terms(nb) if t not in terms)
    return terms


def dictionary_text(root: Path = ROOT) -> str:
    """jieba 用户词典的内容：一行一个词（不写词频，jieba 会给出保证整词切出的词频）。"""
    return "".join(w + "\n" for w in dict_words(course_terms(root)))


def write_dictionary(path: Path, root: Path = ROOT) -> str:
    """生成词典写到 path（内容没变就不重写），返回内容的摘要。"""
    text = dictionary_text(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- 浏览器端的查询切分

_JS_SPLITTER = r"""
/* lmcourse（tools/search_dict.py）：中文查询的切分，与索引端的 jieba 切分对齐。 */
var lmcourseSingleTerms = new Set(%(singles)s);
var lmcourseFound = (index, word) => {
  if (!index) return true;
  if (index.terms.hasOwnProperty(word) || index.titleterms.hasOwnProperty(word)) return true;
  if (word.length > 2) {
    for (const t in index.terms) if (t.includes(word)) return true;
    for (const t in index.titleterms) if (t.includes(word)) return true;
  }
  return false;
};
var lmcourseSegment = (index, run) => {
  /* 在索引词里做正向最大匹配；匹配不到的字单独成词（随后被去掉） */
  const chars = [...run];
  const out = [];
  let i = 0;
  while (i < chars.length) {
    let j = Math.min(chars.length, i + 12);
    for (; j > i + 1; j--) {
      const w = chars.slice(i, j).join("");
      if (index.terms.hasOwnProperty(w) || index.titleterms.hasOwnProperty(w)) break;
    }
    out.push(chars.slice(i, j).join(""));
    i = j;
  }
  return out;
};
var splitQuery = (query) => {
  const index = (typeof Search !== "undefined" && Search._index) || null;
  const parts = [];
  query
    .split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu)
    .filter((term) => term)
    .forEach((term) => {
      const lower = term.toLowerCase();
      if (index && /\p{Script=Han}/u.test(term) && !lmcourseFound(index, lower))
        parts.push(...lmcourseSegment(index, lower));
      else parts.push(term);
    });
  /* 索引里没有单字（单字术语除外）：查询里还有别的词时去掉单字，否则它让整个查询落空 */
  const kept = parts.filter((t) => [...t].length > 1 || lmcourseSingleTerms.has(t));
  return kept.length ? kept : parts;
};
"""


def _make_language():
    from sphinx.search.zh import SearchChinese

    class CourseChinese(SearchChinese):
        """zh 搜索：载入课程词典，保留单字术语，浏览器端按索引词切分查询。"""

        def init(self, options):
            super().init(options)
            self.single_terms = set()
            path = options.get("dict")
            if path and Path(path).is_file():
                words = Path(path).read_text(encoding="utf-8").split()
                self.single_terms = {w for w in words if len(w) == 1}
            self.js_splitter_code = _JS_SPLITTER % {
                "singles": json.dumps(sorted(self.single_terms), ensure_ascii=False)}

        def word_filter(self, stemmed_word):
            return len(stemmed_word) > 1 or stemmed_word in self.single_terms

    return CourseChinese


def _on_config_inited(app, config):
    options = dict(config.html_search_options or {})
    path = Path(options.get("dict") or DEFAULT_DICT)
    if not path.is_absolute():
        path = Path(app.srcdir) / path
    app._lmcourse_search_dict_digest = write_dictionary(path, Path(app.srcdir))
    options["dict"] = str(path)
    config.html_search_options = options


def _on_env_get_outdated(app, env, added, changed, removed):
    digest = getattr(app, "_lmcourse_search_dict_digest", None)
    old = getattr(env, "lmcourse_search_dict_digest", None)
    env.lmcourse_search_dict_digest = digest
    if old is not None and old != digest:
        return sorted(env.found_docs)
    return []


def setup(app):
    app.add_search_language(_make_language())
    app.connect("config-inited", _on_config_inited)
    app.connect("env-get-outdated", _on_env_get_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}


if __name__ == "__main__":
    if "--terms" in sys.argv:
        print("\n".join(glossary_terms()))
    else:
        sys.stdout.write(dictionary_text())
