#!/usr/bin/env python3
"""Generate docs/api.md from include/mlc.h, so the reference cannot drift.

    tools/gen-api-doc.py [include/mlc.h] > docs/api.md

The header is the source of truth: its opening comment (the overview, the
Conventions and the Caveats), its section banners, and every declaration
(functions, structs, enums, typedefs, *_INIT macros) with the /** ... */
comment before it.  Declarations that follow one another without a blank
line share one entry.  tests/check-api-doc.sh regenerates the file and
fails if it differs from the committed one.
"""
import os
import re
import sys

BANNER = re.compile(r"^/\* -{20,} \*/$")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comment(lines):
    """The text of a /* */ or /** */ comment, one entry per line, with the
    ' * ' margin removed and the indentation beyond it kept."""
    text = "\n".join(lines)
    text = re.sub(r"^/\*\*?", "", text.strip())
    text = re.sub(r"\*/$", "", text)
    out = []
    for ln in text.split("\n"):
        ln = ln.rstrip()
        m = re.match(r"^\s*\* ?(.*)$", ln)
        out.append(m.group(1) if m else ln.strip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    # A one-line /** text */ keeps its leading space: drop it.
    if len(out) == 1:
        out[0] = out[0].strip()
    return [o.expandtabs(8) for o in out]


def decl_names(code):
    """The names a declaration group defines, for headings and links:
    structs, enums, functions and typedefs in order, then #defines."""
    flat = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    defines = re.findall(r"^#define\s+(" + IDENT + ")", flat, re.M)
    body = re.sub(r"^#.*$", "", flat, flags=re.M)
    depth, cur, stmts = 0, "", []
    for ch in body:        # top-level statements: ';' at brace depth 0
        cur += ch
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            stmts.append(cur.strip())
            cur = ""
    names = []
    for st in stmts:
        st = re.sub(r"\{.*\}", "{}", st, flags=re.S)
        m = re.match(r"^(struct|enum)\s+(" + IDENT + r")\s*(\{\}|;)", st)
        if m:
            names.append(m.group(1) + " " + m.group(2))
            continue
        m = re.search(r"(" + IDENT + r")\s*\(", st)
        if m:
            names.append(m.group(1))
            continue
        m = re.search(r"(" + IDENT + r")\s*;$", st)
        if m:
            names.append(m.group(1))
    return names + defines


def parse(path):
    src = open(path, encoding="utf-8").read().split("\n")
    i, n = 0, len(src)
    top = []
    # The opening comment.
    if src[0].startswith("/*"):
        while not src[i].rstrip().endswith("*/"):
            top.append(src[i])
            i += 1
        top.append(src[i])
        i += 1
    sections = [{"title": "Basics", "intro": [], "groups": []}]
    doc = None          # pending /** */ comment lines
    group = None        # current group of declarations
    while i < n:
        line = src[i]
        s = line.strip()
        if BANNER.match(s):
            # /* Title */ lines follow
            i += 1
            title = []
            while i < n and re.match(r"^/\*.*\*/$", src[i].strip()):
                title.append(src[i].strip()[2:-2].strip())
                i += 1
            head, intro = title[0], title[1:]
            if intro and ", " in head:
                # "Title, what it is for" over several lines: the title
                # alone as the heading, the rest as its introduction.
                head, rest = head.split(", ", 1)
                intro = [rest[0].upper() + rest[1:]] + intro
            sections.append({"title": head, "intro": intro, "groups": []})
            group, doc = None, None
            continue
        if s == "":
            group = None
            i += 1
            continue
        if s.startswith("/**"):
            start = i
            while not src[i].rstrip().endswith("*/"):
                i += 1
            doc = strip_comment(src[start:i + 1])
            group = None
            i += 1
            continue
        if s.startswith("/*"):          # a plain comment: not documentation
            while not src[i].rstrip().endswith("*/"):
                i += 1
            i += 1
            continue
        if s.startswith("#") and not s.startswith("#define MLC_") or \
                s.startswith("#define MLC_H") or s.startswith('extern "C"') \
                or s == "}":
            i += 1
            continue
        if s.startswith("#define MLC__"):   # internal: not documented
            while src[i].rstrip().endswith("\\"):
                i += 1
            i += 1
            continue
        # A declaration: up to ';' at depth 0 (or one #define line).
        start, depth = i, 0
        if s.startswith("#define"):
            end = i
        else:
            end = None
            j = i
            while j < n:
                code = re.sub(r"/\*.*?\*/", "", src[j])
                code = re.sub(r"//.*", "", code)
                for ch in code:
                    if ch == "{":
                        depth += 1
                    elif ch == "}":
                        depth -= 1
                if depth == 0 and code.rstrip().endswith(";"):
                    end = j
                    break
                j += 1
            if end is None:
                sys.exit("gen-api-doc: unterminated declaration at line %d"
                         % (i + 1))
        code = "\n".join(src[start:end + 1])
        if group is None:
            group = {"doc": doc or [], "code": [], "line": start + 1}
            sections[-1]["groups"].append(group)
            doc = None
        group["code"].append(code)
        i = end + 1
    for sec in sections:
        for g in sec["groups"]:
            g["names"] = decl_names("\n".join(g["code"]))
    return strip_comment(top), [s for s in sections if s["groups"]]


# ---- rendering ---------------------------------------------------------

def anchor(name):
    return name.replace("struct ", "struct-").replace("enum ", "enum-")


class Prose:
    """Inline markup for comment text: @p, functions, constants, codes."""

    def __init__(self, known):
        self.known = known
        self.rx = re.compile(
            r"(?P<p>\*?@p\s+" + IDENT + r"(?:->" + IDENT + r")?)"
            r"|(?P<fn>\b[a-z_][a-z0-9_]*\(\))"
            r"|(?P<tag>\b(?:struct|enum)\s+mlc_[a-z0-9_]+\b)"
            r"|(?P<const>\b(?:MLC_[A-Z0-9_]+|E[A-Z0-9]{3,}|SIGBUS|CLOCK_MONOTONIC|NULL|NUL)\b)"
            r"|(?P<err>(?<![A-Za-z0-9_])-E[A-Z0-9]+\b)"
            r"|(?P<arrow>\*?\b" + IDENT + r"->" + IDENT + r"\b)"
            r"|(?P<field>\*?\b[a-z0-9]+_[a-z0-9_]+\b)"
            r"|(?P<esc>[*<>|\\`])")

    def __call__(self, text):
        def sub(m):
            k = m.lastgroup
            t = m.group(0)
            if k == "p":
                star = "*" if t.startswith("*") else ""
                return "`%s%s`" % (star, re.sub(r"^\*?@p\s+", "", t))
            if k == "fn":
                name = t[:-2]
                if name in self.known:
                    return "[`%s`](#%s)" % (t, anchor(name))
                return "`%s`" % t
            if k == "tag":
                name = re.sub(r"\s+", " ", t)
                if name in self.known:
                    return "[`%s`](#%s)" % (name, anchor(name))
                return "`%s`" % name
            if k in ("const", "err", "arrow", "field"):
                return "`%s`" % t
            return "\\" + t
        return self.rx.sub(sub, text)


def paragraphs(lines):
    """Blocks separated by blank lines."""
    blk = []
    for ln in lines:
        if ln.strip():
            blk.append(ln)
        elif blk:
            yield blk
            blk = []
    if blk:
        yield blk


ROW = re.compile(r"^\s+(-E[A-Z0-9]+|MLC_E[A-Z0-9]+)(?:\s{2,}(.*)|\.?)$")


def render_doc(lines, prose, out):
    since = None
    text = "\n".join(lines)
    m = re.search(r"\s*@since\s+(\S+?)\.?(?=\s|$)", text)
    if m:
        since = m.group(1)
        text = (text[:m.start()] + text[m.end():]).rstrip()
    text = re.sub(r"(?<=\S)[ \t]+@return\b", "\n@return", text)
    lines = text.split("\n")
    for blk in paragraphs(lines):
        ret_at = next((k for k, l in enumerate(blk)
                       if l.lstrip().startswith("@return")), None)
        body = blk if ret_at is None else blk[:ret_at]
        if body:
            render_text(body, prose, out)
        if ret_at is None:
            continue
        ret = blk[ret_at].lstrip()[len("@return"):].strip()
        rows = []
        for l in blk[ret_at + 1:]:
            m = ROW.match(l)
            if m:
                rows.append([m.group(1), (m.group(2) or "").strip()])
            elif rows:
                rows[-1][1] += " " + l.strip()
            else:
                ret += " " + l.strip()
        if rows and not any(d for _, d in rows):
            ret += " " + " ".join(c for c, _ in rows) + "."
            rows = []
        out.append("**Returns** " + prose(ret))
        out.append("")
        if rows:
            out.append("| code | when |")
            out.append("|---|---|")
            for c, d in rows:
                out.append("| `%s` | %s |" % (c, prose(d) if d else ""))
            out.append("")
    if since:
        out.append("*Since %s.*" % since)
        out.append("")


def render_text(lines, prose, out):
    """Prose, '- ' lists and 'TERM  text' definition lines."""
    items = []      # (kind, head, [text lines])
    for ln in lines:
        m = re.match(r"^(\s*)- (.*)$", ln)
        d = re.match(r"^(\s+)(\S+)\s{2,}(.*)$", ln)
        if m:
            items.append(["li", None, [m.group(2)], len(m.group(1))])
        elif d and (not items or items[-1][0] != "p"
                    or len(d.group(1)) >= 2):
            if items and items[-1][0] in ("li", "dl") and \
                    len(d.group(1)) > items[-1][3]:
                items[-1][2].append(ln.strip())
            else:
                items.append(["dl", d.group(2), [d.group(3)],
                              len(d.group(1))])
        elif items and items[-1][0] in ("li", "dl") and ln.startswith(" "):
            items[-1][2].append(ln.strip())
        elif items and items[-1][0] == "p":
            items[-1][2].append(ln.strip())
        else:
            items.append(["p", None, [ln.strip()], 0])
    prev = None
    for kind, head, text, _ in items:
        if prev == "p" or (prev and kind == "p"):
            out.append("")
        t = prose(" ".join(text))
        if kind == "li":
            out.append("- " + t)
        elif kind == "dl":
            out.append("- **%s** %s" % (head, t))
        else:
            out.append(t)
        prev = kind
    out.append("")


def render(path, rel):
    top, sections = parse(path)
    known = set()
    for sec in sections:
        for g in sec["groups"]:
            known.update(g["names"])
    prose = Prose(known)
    version = ""
    src = open(path, encoding="utf-8").read()
    parts = [re.search(r"#define\s+MLC_VERSION_%s\s+(\d+)" % p, src)
             for p in ("MAJOR", "MINOR", "PATCH")]
    if all(parts):
        version = ".".join(p.group(1) for p in parts)

    out = ["# mlc API reference", "",
           "<!-- Generated from %s by tools/gen-api-doc.py: do not edit. "
           "tests/check-api-doc.sh fails when it differs. -->" % rel, ""]
    out.append("Version %s.  Everything here is in [`%s`](../%s), the only "
               "public header; this page is generated from it (its "
               "comments are the documentation)." % (version, rel, rel))
    out.append("")

    # The opening comment: an overview, then titled blocks (Conventions,
    # Caveats) of '- ' items.
    blocks, cur = [("Overview", [])], None
    for ln in top:
        if re.match(r"^[A-Z][A-Za-z ]+$", ln) and ln.strip() == ln and \
                len(ln.split()) <= 3:
            blocks.append((ln, []))
        else:
            blocks[-1][1].append(ln)
    out.append("## Contents")
    out.append("")
    for title, _ in blocks:
        out.append("- [%s](#%s)" % (title, title.lower().replace(" ", "-")))
    for sec in sections:
        sid = re.sub(r"[^a-z0-9 -]", "", sec["title"].lower()).replace(" ", "-")
        names = [n for g in sec["groups"] for n in g["names"]]
        out.append("- [%s](#%s): %s" % (
            sec["title"], sid,
            ", ".join("[`%s`](#%s)" % (x, anchor(x)) for x in names)))
    out.append("")
    for title, lines in blocks:
        out.append("## " + title)
        out.append("")
        for blk in paragraphs(lines):
            render_text(blk, prose, out)
    for sec in sections:
        out.append("## " + sec["title"])
        out.append("")
        if sec["intro"]:
            out.append(prose(" ".join(sec["intro"])))
            out.append("")
        for g in sec["groups"]:
            for x in g["names"]:
                out.append('<a id="%s"></a>' % anchor(x))
            out.append("### " + ", ".join("`%s`" % x for x in g["names"]))
            out.append("")
            out.append("```c")
            for c in g["code"]:
                out.extend(l.expandtabs(8).rstrip() for l in c.split("\n"))
            out.append("```")
            out.append("")
            if g["doc"]:
                render_doc(g["doc"], prose, out)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        top, "include", "mlc.h")
    rel = os.path.relpath(os.path.abspath(path), top)
    sys.stdout.write(render(path, rel))


if __name__ == "__main__":
    main()
