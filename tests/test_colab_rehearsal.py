"""tools/colab_rehearsal.py 里不用建 venv 就能检查的部分：版本表、下限、包的前后对比、输出扫描、地址替换，
以及每项检查在出问题时确实报出来（演习的失败：下限太高、ipywidgets 被升级、字体没用上、部件不带前端模块）。

完整的彩排（建 venv、执行一章，约 5 分钟）是 make colab，单独跑，不在这里；
python tools/colab_rehearsal.py --plant "ipywidgets>=8" 是端到端的失败演习。
"""
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
_spec = importlib.util.spec_from_file_location("colab_rehearsal", ROOT / "tools" / "colab_rehearsal.py")
rehearsal = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rehearsal)

import chapter_header  # noqa: E402


def test_lower_bounds_admit_colab_versions():
    failures = []
    rehearsal.check_lower_bounds(failures)
    assert failures == []


def test_lower_bound_check_catches_a_too_high_bound(monkeypatch):
    monkeypatch.setitem(rehearsal.COLAB_VERSIONS, "ipywidgets", "7.5.0")   # 假如 Colab 的比下限 7.6 还旧
    failures = []
    rehearsal.check_lower_bounds(failures)
    assert len(failures) == 1 and "ipywidgets" in failures[0]


def test_install_list_is_colab_list_with_exact_local_torch():
    diff = {k for k in rehearsal.COLAB_INSTALL if rehearsal.COLAB_INSTALL[k] != rehearsal.COLAB_VERSIONS.get(k)}
    assert diff == {"torch"}
    assert rehearsal.COLAB_INSTALL["torch"] == "2.13.0"     # 精确版本：取本机的 CPU wheel，不让 pip 去解析 CUDA 版
    assert rehearsal.COLAB_INSTALL["ipywidgets"].startswith("7.")


def test_setup_cell_has_exactly_one_repository_address_to_swap():
    url, _ = chapter_header.repository()
    assert chapter_header.setup_source().count(f"git+{url}.git") == 1
    assert '"google.colab" in sys.modules' in chapter_header.setup_source()


def test_compare_installed_flags_upgrade_reinstall_and_removal():
    before = {"torch": ("2.13.0", "torch-2.13.0.dist-info", 1), "ipywidgets": ("7.7.1", "ipywidgets-7.7.1.dist-info", 1),
              "numpy": ("2.0.2", "numpy-2.0.2.dist-info", 1), "tqdm": ("4.67.3", "tqdm-4.67.3.dist-info", 1)}
    after = {"torch": ("2.13.0", "torch-2.13.0.dist-info", 2),                       # 重装：安装时间变了
             "ipywidgets": ("8.1.9", "ipywidgets-8.1.9.dist-info", 2),               # 升级
             "tqdm": ("4.67.3", "tqdm-4.67.3.dist-info", 1),
             "lmcourse": ("0.1.0", "lmcourse-0.1.0.dist-info", 3)}                   # numpy 被卸掉
    failures = []
    rehearsal.compare_installed(before, after, failures)
    text = "\n".join(failures)
    assert len(failures) == 3
    assert "torch" in text and "重装" in text and "7.7.1 → 8.1.9" in text and "numpy" in text


def test_compare_installed_passes_when_only_new_packages_arrive():
    before = {"torch": ("2.13.0", "torch-2.13.0.dist-info", 1)}
    after = dict(before, lmcourse=("0.1.0", "lmcourse-0.1.0.dist-info", 2), snownlp=("0.12.3", "x", 2))
    failures = []
    rehearsal.compare_installed(before, after, failures)
    assert failures == []
    failures = []
    rehearsal.compare_installed(before, dict(before), failures)
    assert failures == ["环境准备单元没有装上 lmcourse"]


def test_output_scan_sees_warnings_and_errors():
    glyph = {"output_type": "stream", "name": "stderr",
             "text": "<string>:3: UserWarning: Glyph 27880 (\\N{CJK UNIFIED IDEOGRAPH-6CE8}) missing from font(s) DejaVu Sans.\n"}
    error = {"output_type": "error", "ename": "ValueError", "evalue": "坏了", "traceback": []}
    fine = {"output_type": "display_data", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}
    found = {name: [m for m, p in rehearsal.MARKERS.items() if re.search(p, rehearsal.text_of(o))]
             for name, o in (("glyph", glyph), ("error", error), ("fine", fine))}
    assert found == {"glyph": ["Glyph … missing"], "error": ["Traceback"], "fine": []}


def test_planted_too_high_bound_in_a_pyproject_is_reported(tmp_path):
    # make colab 里演习失败用的是同一个 plant：快照里的 pyproject.toml 换掉一条，检查读的是快照那份
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    planted = rehearsal.plant(text, "ipywidgets>=8")
    assert planted.count('"ipywidgets>=8",') == 1 and '"ipywidgets>=7' not in planted
    assert planted.replace('"ipywidgets>=8",', "") == re.sub(r'"ipywidgets[^"]*",', "", text, count=1)
    (tmp_path / "pyproject.toml").write_text(planted, encoding="utf-8")
    failures = []
    rehearsal.check_lower_bounds(failures, tmp_path / "pyproject.toml")
    assert len(failures) == 1 and "ipywidgets>=8" in failures[0] and "7.7.1" in failures[0]


def test_plant_refuses_torch_and_unknown_names():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for spec in ("torch>=2.14", "no-such-package>=1"):
        with pytest.raises(SystemExit):
            rehearsal.plant(text, spec)


def _probe_cell(report):
    import json

    import nbformat

    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="REHEARSAL " + json.dumps(report) + "\n")]
    return cell


def test_font_probe_flags_upgraded_ipywidgets_foreign_torch_and_fallback_font(tmp_path):
    site = tmp_path / "site-packages"
    bundled = site / "lmcourse" / "fonts" / "NotoSansSC-Subset.ttf"
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"")
    good = {"versions": {"ipywidgets": "7.7.1", "matplotlib": "3.10.0", "numpy": "2.0.2", "torch": "2.13.0+cpu",
                         "transformers": "5.9.0"},
            "lmcourse": str(site / "lmcourse" / "__init__.py"), "font_family": ["sans-serif"],
            "sans_serif": ["Noto Sans SC"], "font_file": str(bundled), "bundled_font": str(bundled)}
    failures = []
    rehearsal.check_font(_probe_cell(good), site, failures)
    assert failures == []
    bad = dict(good, versions=dict(good["versions"], ipywidgets="8.1.9", torch="2.14.1+cu128"),
               lmcourse=str(ROOT / "lmcourse" / "__init__.py"), font_file="/usr/share/fonts/DejaVuSans.ttf")
    rehearsal.check_font(_probe_cell(bad), site, failures)
    text = "\n".join(failures)
    assert len(failures) == 4
    assert "8.1.9" in text and "2.14.1" in text and "site-packages" in text and "DejaVuSans" in text


def test_widget_view_that_is_not_an_anywidget_with_module_and_data_is_reported():
    view = {"output_type": "display_data",
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "w"}, "text/plain": "Explorer"}}
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
    good = {"_model_name": "AnyModel", "_esm": "export default { render }", "data": {"base": 1e4}, "kind": "x"}
    failures = []
    rehearsal.check_widget_view("好的", [view], {"w": good}, failures)
    assert failures == []
    for bad in ({**good, "_esm": ""}, {**good, "data": {}}, {**good, "_model_name": "VBoxModel"}):
        rehearsal.check_widget_view("坏的", [view], {"w": bad}, failures)
    rehearsal.check_widget_view("没有部件", [png], {"w": good}, failures)
    assert len(failures) == 4 and all("anywidget" in f for f in failures[:3]) and "没有部件视图" in failures[3]


def test_dependency_pins_do_not_touch_the_install_list_or_torch():
    from packaging.utils import canonicalize_name

    pins = {canonicalize_name(k) for k in rehearsal.COLAB_DEPENDENCY_PINS}
    assert len(pins) == len(rehearsal.COLAB_DEPENDENCY_PINS)
    assert not pins & {canonicalize_name(k) for k in rehearsal.COLAB_INSTALL}
    assert not pins & {"torch", "pip", "setuptools"}
