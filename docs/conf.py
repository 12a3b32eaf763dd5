"""Sphinx configuration of the invprob documentation.

Build: ``make docs`` (warnings are errors). Environment:

* ``INVPROB_DOCS_EXECUTE`` -- ``1`` (default) runs the examples of ``examples/`` with
  sphinx-gallery; ``0`` renders them without running them.
* ``INVPROB_DOCS_QUICK`` -- ``1`` passes ``--quick`` to every example.

At ``builder-inited`` the pages under ``docs/generated/`` are written from the package and
the repository: one page per solver and per operator module (with the presets whose
``_target_`` is one of its classes), one per prior preset, the API reference, the
``invprob --help`` output and the benchmark results of ``benchmarks/results/``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(DOCS))  # for _gallery_argv (sphinx-gallery's reset_argv)

import invprob  # noqa: E402  (imported after the path set-up, for the version)

project = "invprob"
author = "invprob contributors"
copyright = "invprob contributors"
release = invprob.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

html_theme = "furo"
html_title = f"invprob {release}"

# autodoc / napoleon (Google-style docstrings).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

# myst (design.md and the Markdown pages).
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# sphinx-gallery: every .py directly in examples/ is an example (no plot_ prefix);
# examples/plugin_solver/ and private helpers (_*.py) are not.
_EXECUTE = os.environ.get("INVPROB_DOCS_EXECUTE", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"(plugin_solver|__init__\.py$|/_[^/]*\.py$)",
    "reset_argv": "_gallery_argv.reset_argv",  # ["--quick"] when INVPROB_DOCS_QUICK=1
    "plot_gallery": _EXECUTE,
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
}


# --------------------------------------------------------------------------------------------
# Page generators (run at builder-inited).
# --------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it already holds it (keeps incremental builds cheap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove generated pages of ``folder`` that are no longer produced."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink()


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * max(len(text), 3)}\n"


def _rel(path: Path, page_dir: Path) -> str:
    """``path`` relative to the folder of the page that references it, with ``/``."""
    return Path(os.path.relpath(path, page_dir)).as_posix()


def _escape(text: str) -> str:
    """Plain text as RST: markup characters escaped."""
    for char in "\\`*_|":
        text = text.replace(char, "\\" + char)
    return text


def _inline(text: str) -> str:
    """Comment text as RST: Markdown-style `code` becomes an inline literal, the rest is escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # unbalanced backticks: plain text
        return _escape(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2 and part.strip() and part == part.strip() and not part.endswith("\\"):
            out.append(f"\\ ``{part}``\\ ")
        else:
            out.append(_escape(part) if not i % 2 else _escape(f"`{part}`"))
    return "".join(out)


def _leading_comment(path: Path, keys=()) -> list[str]:
    """The YAML file's leading comment as lines: wrapped prose is joined, while a line that
    starts a new statement (a setting's name, a capital after a full stop) starts a new line."""
    out: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.startswith("#"):
            break
        body = raw[1:]
        content = body.strip()
        if not content:
            continue
        first = re.split(r"[\s:/,(]", content, maxsplit=1)[0]
        indented = body.startswith("  ")
        if out and (indented or (first not in keys and (content[0].islower()
                                                        or not out[-1].endswith((".", ":", ";", ")"))))):
            out[-1] += " " + content
        else:
            out.append(content)
    return out


def _lines(lines: list[str], indent: str) -> list[str]:
    """Comment lines as RST: one paragraph, or a line block."""
    if len(lines) == 1:
        return [_inline(lines[0])]
    return [f"| {_inline(line)}" if i == 0 else f"{indent}| {_inline(line)}" for i, line in enumerate(lines)]


def _flow(value) -> str:
    """A YAML value on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    return text


def _raw_scalars(path: Path) -> dict[str, str]:
    """Top-level ``key: value`` lines of a YAML file as written (``1e-4`` stays ``1e-4``)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z_][\w.-]*):\s+([^#{}\[\]&*!|>'\"][^#]*?)\s*", line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _literal(text: str) -> str:
    return f"``{text}``" if "`" not in text and not text.endswith("\\") else _escape(text)


def _presets(group: str) -> list[tuple[str, Path, dict]]:
    """``(name, path, config)`` of every YAML preset of ``group`` in the repository."""
    out = []
    for path in sorted((ROOT / group).glob("*.yaml"), key=lambda p: p.stem):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(config, dict) and "_target_" in config:
            out.append((path.stem, path, config))
    return out


def _locate(target: str):
    from invprob.registry import locate

    return locate(target)  # a preset whose target does not import fails the build


def _preset_table(presets: list[tuple[str, Path, dict]], page_dir: Path) -> str:
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 18 52 30", "",
             "   * - preset", "     - what, and the source of its defaults", "     - settings"]
    for name, path, config in presets:
        settings = {k: v for k, v in config.items() if k != "_target_"}
        comment = _leading_comment(path, keys=settings)
        lines.append(f"   * - ``{name}``")
        if comment:
            lines += [("     - " if i == 0 else "") + line for i, line in enumerate(_lines(comment, "       "))]
        else:
            lines.append(f"     - (no comment in ``{path.name}``)")
        if settings:
            raw = _raw_scalars(path)
            first = True
            for key, value in settings.items():
                text = raw.get(key, _flow(value))
                lines.append(("     - " if first else "       ") + f"* {_literal(f'{key}: {text}')}")
                first = False
        else:
            lines.append("     - (none)")
    return "\n".join(lines) + "\n"


def _public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and (inspect.isclass(obj) or inspect.isfunction(obj))]
    return list(names)


def _doc_name(package, module, name: str) -> str:
    """The name an object is documented under: the package's when the package exports it."""
    obj = getattr(module, name)
    if getattr(package, name, None) is obj and name in getattr(package, "__all__", ()):
        return f"{package.__name__}.{name}"
    return f"{module.__name__}.{name}"


def _summary(module) -> str:
    doc = inspect.getdoc(module) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _page_title(module, classes: list[str]) -> str:
    first = _summary(module).split(". ")[0]
    cuts = [first.index(sep) for sep in (" — ", ": ") if sep in first]
    head = first[: min(cuts)].strip() if cuts else ""
    if 0 < len(head) <= 40:
        return head.replace("``", "")
    return ", ".join(classes)


def _family_pages(kind: str, package_name: str, base_name: str, group: str, skip: set[str]) -> set[int]:
    """One page per module of ``package_name`` defining a subclass of ``base_name``.

    Each page: the module docstring, ``autoclass`` / ``autofunction`` of the module's public
    objects, and the table of the presets (``group/*.yaml``) whose ``_target_`` is one of its
    classes. Returns the ids of the objects documented, for the API pages to exclude.
    """
    package = importlib.import_module(package_name)
    base = getattr(package, base_name)
    folder = GENERATED / kind
    presets = _presets(group)
    targets = {name: _locate(config["_target_"]) for name, _, config in presets}
    written, documented, matched = set(), set(), set()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in skip:
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        names = [n for n in _public_names(module)
                 if getattr(getattr(module, n, None), "__module__", None) == module.__name__]
        classes = [n for n in names if inspect.isclass(getattr(module, n))
                   and issubclass(getattr(module, n), base) and getattr(module, n) is not base]
        if not classes:
            continue
        own = [p for p in presets if any(targets[p[0]] is getattr(module, c) for c in classes)]
        matched |= {p[0] for p in own}
        title = _page_title(module, classes)
        parts = [f".. _{kind}-{info.name}:\n", _title(title),
                 f"Module :mod:`{module.__name__}`; classes {', '.join(f'``{c}``' for c in classes)}.\n",
                 f".. automodule:: {module.__name__}\n"]
        if own:
            parts += [_title("Presets", "-"),
                      "Presets are YAML files in ``" + group + "/`` (``invprob list``); their comments cite "
                      "the source of each default.\n", _preset_table(own, folder)]
        else:
            parts.append(f"No preset in ``{group}/`` builds these classes.\n")
        tunables = [(c, n, t) for c in classes for n, t in getattr(getattr(module, c), "tunables", {}).items()]
        if tunables:
            parts += [_title("Calibration", "-"),
                      "The hyper-parameters ``invprob calibrate`` searches (:mod:`invprob.calibration`), around "
                      "the preset's value *v*, within the values the argument accepts:\n"]
            parts += [f"- ``{c}.{n}``: " + (f"[*v* / {t.factor:g}, *v* × {t.factor:g}], log scale"
                                             if t.scale == "log" else f"[*v* − {t.width:g}, *v* + {t.width:g}], linear scale")
                      + (f", within [{t.bounds[0]:g}, {t.bounds[1]:g}]" if math.isfinite(t.bounds[1]) else "")
                      for c, n, t in tunables]
            parts.append("")
        parts.append(_title("Reference", "-"))
        for name in names:
            obj = getattr(module, name)
            qualified = _doc_name(package, module, name)
            documented.add(id(obj))
            if inspect.isclass(obj):
                parts.append(f".. autoclass:: {qualified}\n   :members:\n   :show-inheritance:\n")
            elif callable(obj):
                parts.append(f".. autofunction:: {qualified}\n")
            else:
                parts.append(f".. autodata:: {qualified}\n   :annotation:\n")
        _write(folder / f"{info.name}.rst", "\n".join(parts))
        written.add(f"{info.name}.rst")
    others = [p for p in presets if p[0] not in matched]
    if others:
        lines = [_title(f"Other {group.rstrip('s')} presets"),
                 f"Presets of ``{group}/`` whose ``_target_`` is not a class documented on the other pages.\n"]
        for name, path, config in others:
            lines.append(f"* ``{name}``: built by ``{config['_target_']}``")
        lines.append("")
        lines.append(_preset_table(others, folder))
        _write(folder / "zz-other-presets.rst", "\n".join(lines))
        written.add("zz-other-presets.rst")
    _prune(folder, written)
    return documented


def _prior_pages() -> None:
    """One page per prior preset (``priors/*.yaml``): its comment, its settings or model card,
    and for the shipped priors the training record and sample grid of ``invprob/weights/<name>/``."""
    folder = GENERATED / "priors"
    written = set()
    for name, path, config in _presets("priors"):
        target = config["_target_"]
        settings = {k: v for k, v in config.items() if k != "_target_"}
        kind = "model card" if "card" in settings else ("shipped weights" if target.endswith("load_shipped")
                                                         else "analytic")
        parts = [f".. _prior-{name}:\n", _title(f"{name}"),
                 f"Preset ``{name}`` ({kind}): ``get_prior(\"{name}\")`` or ``prior={name}`` on the command "
                 f"line; built by ``{target}``.\n"]
        comment = _leading_comment(path, keys=settings)
        if comment:
            parts.append("\n".join(_lines(comment, "")) + "\n")
        if settings:
            body = yaml.safe_dump(settings, sort_keys=False, width=100, allow_unicode=True)
            parts += [_title("Settings" if kind != "model card" else "Model card", "-"),
                      ".. code-block:: yaml\n", "\n".join("   " + ln for ln in body.splitlines()) + "\n"]
        weights = ROOT / "invprob" / "weights" / str(settings.get("name", name))
        if target.endswith("load_shipped") and (weights / "config.json").is_file():
            record = json.loads((weights / "config.json").read_text(encoding="utf-8"))
            training = record.get("training")
            parts.append(_title("Training record", "-"))
            parts.append(f"From ``invprob/weights/{weights.name}/config.json`` (the network's architecture is "
                         "in the same file).\n")
            if training:
                body = yaml.safe_dump(training, sort_keys=False, width=100, default_flow_style=None)
                parts += [".. code-block:: yaml\n", "\n".join("   " + ln for ln in body.splitlines()) + "\n"]
            for image, caption in (("samples.png", "Unconditional samples"), ("loss.png", "Training loss")):
                if (weights / image).is_file():
                    parts.append(f".. figure:: {_rel(weights / image, folder)}\n   :width: 60%\n\n"
                                 f"   {caption} (``invprob/weights/{weights.name}/{image}``).\n")
        _write(folder / f"{name}.rst", "\n".join(parts))
        written.add(f"{name}.rst")
    _prune(folder, written)


def _api_pages(documented: set[int]) -> None:
    """The API reference: one page per package, ``automodule`` with the modules' ``__all__``.

    ``documented`` holds the ids of the objects already documented (on the solver and operator
    pages, or by a module listed earlier): they are excluded, so each object has one description.
    """
    folder = GENERATED / "api"
    pages = {
        "invprob": ["invprob", "invprob.noise", "invprob.registry", "invprob.sampling", "invprob.errors",
                    "invprob.io", "invprob.training", "invprob.calibration"],
        "invprob.datasets": ["invprob.datasets"],  # before invprob.evaluation, which re-exports from it
        "invprob.operators": ["invprob.operators", "invprob.operators.base", "invprob.operators.readers"],
        "invprob.priors": ["invprob.priors", "invprob.priors.adm", "invprob.priors.latent", "invprob.priors.cards",
                           "invprob.priors.shipped", "invprob.priors.deepinv_bridge"],
        "invprob.solvers": ["invprob.solvers", "invprob.solvers.base"],
        "invprob.evaluation": ["invprob.evaluation"],
    }
    written = set()
    for page, modules in pages.items():
        parts = [_title(f"``{page}``")]
        for modname in modules:
            module = importlib.import_module(modname)  # a module that does not import fails the build
            names = _public_names(module)
            skip = sorted({n for n in names if inspect.ismodule(getattr(module, n, None))
                           or id(getattr(module, n, None)) in documented})
            if modname != page:
                parts.append(_title(f"``{modname}``", "-"))
            options = ["   :members:"]
            if skip:
                options.append("   :exclude-members: " + ", ".join(skip))
            parts.append(f".. automodule:: {modname}\n" + "\n".join(options) + "\n")
            documented.update(id(getattr(module, n, None)) for n in names if n not in skip)
        if len(parts) > 1:
            name = "invprob" if page == "invprob" else page.replace("invprob.", "invprob-")
            _write(folder / f"{name}.rst", "\n".join(parts))
            written.add(f"{name}.rst")
    _prune(folder, written)


def _cli_pages() -> None:
    """``invprob --help``, ``invprob solve --help`` and ``invprob calibrate --help``, captured now."""
    folder = GENERATED / "cli"
    commands = {"invprob-help.txt": ["--help"], "invprob-solve-help.txt": ["solve", "--help"],
                "invprob-calibrate-help.txt": ["calibrate", "--help"]}
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    procs = {name: subprocess.Popen([sys.executable, "-m", "invprob.app.cli", *args], cwd=str(ROOT),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for name, args in commands.items()}
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out = f"(timed out)\n{out}"
        if proc.returncode != 0:
            from sphinx.util import logging

            logging.getLogger(__name__).warning("`invprob %s` exited with status %s", " ".join(commands[name]),
                                                proc.returncode)
        _write(folder / name, out.rstrip() + "\n")


def _results_pages() -> None:
    """One page per ``benchmarks/results/*.md`` (included as is) and ``*.txt``, plus the figures."""
    folder = GENERATED / "results"
    written = set()
    figures = sorted(RESULTS.glob("*.png"))
    shown = set()
    for md in sorted(RESULTS.glob("*.md")):
        mine = [f for f in figures if f.stem == md.stem or f.stem.startswith(md.stem + "_")]
        shown |= set(mine)
        parts = [f"# {md.stem}\n", f"`benchmarks/results/{md.name}`, included as is.\n",
                 f"```{{include}} {_rel(md, folder)}\n```\n"]
        for figure in mine:
            parts.append(f"```{{figure}} {_rel(figure, folder)}\n:width: 90%\n\n`{figure.name}`\n```\n")
        _write(folder / f"{md.stem}.md", "\n".join(parts))
        written.add(f"{md.stem}.md")
    for txt in sorted(RESULTS.glob("*.txt")):
        parts = [f"# {txt.stem}\n", f"`benchmarks/results/{txt.name}`, included as is.\n",
                 f"```{{literalinclude}} {_rel(txt, folder)}\n:language: text\n```\n"]
        _write(folder / f"{txt.stem}.md", "\n".join(parts))
        written.add(f"{txt.stem}.md")
    rest = [f for f in figures if f not in shown]
    if rest:
        parts = ["# Figures\n", "The other figures of `benchmarks/results/`.\n"]
        for figure in rest:
            parts.append(f"```{{figure}} {_rel(figure, folder)}\n:width: 90%\n\n`{figure.name}`\n```\n")
        _write(folder / "zz-figures.md", "\n".join(parts))
        written.add("zz-figures.md")
    _prune(folder, written)


def generate_pages(app) -> None:
    documented = _family_pages("solvers", "invprob.solvers", "Solver", "solvers", skip={"base"})
    documented |= _family_pages("operators", "invprob.operators", "Operator", "operators", skip={"base"})
    _prior_pages()
    _api_pages(documented)
    _cli_pages()
    _results_pages()


def setup(app):
    app.connect("builder-inited", generate_pages)
