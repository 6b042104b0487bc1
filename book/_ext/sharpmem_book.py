"""Sphinx extension for the sharpmem book: an author-year bibliography, and docstrings
that never break the build.

The text cites author-year ({cite:t} gives "Foret et al. (2020)", {cite:p} "(Foret et al.,
2020)", via ``bibtex_reference_style: author_year``); this pybtex style labels the
bibliography's entries the same way ("Foret et al., 2020") instead of pybtex's alpha labels
("FKMN20"), so that the two agree. Enabled in _config.yml (``local_extensions``,
``bibtex_default_style: sharpmem_author_year``).
"""

from __future__ import annotations

import io
import re

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _plain(name: str) -> str:
    """A BibTeX name without its TeX markup: 'Tram{\\`e}r' -> 'Tramer' (accents dropped)."""
    return re.sub(r"\\.|[{}]", "", name)


def author_year_label(entry) -> str:
    """'Feldman, 2020', 'Feldman and Zhang, 2020', 'Foret et al., 2020'."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    who = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
           else f"{last[0]} et al." if last else "Anonymous")
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        labels = [author_year_label(e) for e in sorted_entries]
        for i, label in enumerate(labels):  # 'Feldman, 2020a', 'Feldman, 2020b' if two coincide
            same = [j for j, other in enumerate(labels) if other == label]
            yield label + ("abcdefghijklmnopqrstuvwxyz"[same.index(i)] if len(same) > 1 else "")


class AuthorYearStyle(PlainStyle):
    default_label_style = "sharpmem_author_year"


register_plugin("pybtex.style.labels", "sharpmem_author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "sharpmem_author_year", AuthorYearStyle)


# --- docstrings on the API page -------------------------------------------------------------------------

# Messages about Sphinx's own roles and directives, which plain docutils does not know.
_SPHINX_ONLY = ("Unknown interpreted text role", "No role entry", "Unknown directive type", "No directive entry")


def _escape_bars(text: str) -> str:
    """|x| in a docstring is an absolute value or a norm, never a reST substitution: escape
    the bars, except inside ``inline literals``."""
    parts = re.split(r"(``.+?``)", text)
    return "".join(part if part.startswith("``") else re.sub(r"(?<!\\)\|", r"\\|", part) for part in parts)


def rst_problems(text: str, env=None) -> list[str]:
    """The reST warnings and errors that ``text`` would raise (Sphinx-only roles aside)."""
    from docutils import nodes
    from docutils.core import publish_doctree

    settings = {"report_level": 5, "halt_level": 5, "warning_stream": io.StringIO(), "input_encoding": "unicode"}
    if env is not None:  # inside a Sphinx build, Sphinx's roles look for it
        settings["env"] = env
    tree = publish_doctree(text, settings_overrides=settings)
    return [m.astext() for m in tree.findall(nodes.system_message)
            if m["level"] >= 2 and not any(s in m.astext() for s in _SPHINX_ONLY)]


def readable_docstring(lines: list[str], env=None) -> list[str]:
    """The docstring as reST when it parses cleanly (bars escaped), else verbatim as a
    literal block: a docstring written as plain text still reads right and never fails the
    ``-W`` build."""
    text = _escape_bars("\n".join(lines))
    if not rst_problems(text, env):
        return text.split("\n")
    return ["::", ""] + ["    " + line for line in lines]


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = readable_docstring(lines, app.env)


# --- pages ----------------------------------------------------------------------------------------------


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    # sphinx-thebe registers its inline script once with filename None, once with ''
    return (getattr(js, "filename", str(js)) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """Each script once per page: sphinx-thebe's configuration script is registered twice
    under Jupyter Book, and the second copy throws "Identifier 'THEBE_JS_URL' has already
    been declared" on every page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("html-page-context", _dedupe_scripts, priority=100)  # before any handler that returns a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}

