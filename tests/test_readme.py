"""The README's Python example runs as written."""

import pathlib
import re


def test_readme_python_example_runs():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["result"].samples.shape) == (1, 8, 1, 8, 8)
    assert namespace["result"].nfe == 200


def test_readme_is_a_short_guide_whose_links_resolve():
    root = pathlib.Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert len(links) >= 10
    missing = [link for link in links if not link.startswith(("http://", "https://", "#"))
               and not (root / link.split("#")[0]).exists()]
    assert not missing, missing
