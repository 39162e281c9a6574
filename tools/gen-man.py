#!/usr/bin/env python3
"""Generate the man pages from the sources of truth, so they cannot drift.

    tools/gen-man.py mlcctl PATH/TO/mlcctl VERSION > mlcctl.1
    tools/gen-man.py mlc include/mlc.h VERSION > mlc.3

mlcctl(1) is mlcctl's own help: `mlcctl --help` (usage, options, exit
status) and `mlcctl COMMAND --help` for every command it lists.  mlc(3) is
the public header, parsed as tools/gen-api-doc.py parses it for
docs/api.md: the opening comment (overview, Conventions, Caveats), then
every declaration with the comment before it, section by section.  Both are
plain roff (man(7) macros); the text is kept as written, in no-fill blocks,
because its line breaks and indentation carry lists and tables.
"""
import importlib.util
import os
import re
import subprocess
import sys


def roff(line):
    """One line of text, safe in roff: backslashes escaped, and a line
    that starts with a control character protected."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def block(lines, out):
    out.append(".nf")
    out.extend(roff(l.rstrip()) for l in lines)
    out.append(".fi")


def header(name, section, version, summary, out):
    out.append('.TH %s %s "" "mlc %s" "mlc manual"' %
               (name.upper(), section, version))
    out.append(".SH NAME")
    out.append("%s \\- %s" % (name, roff(summary)))


def mlcctl_page(binary, version):
    def run(*args):
        return subprocess.run([binary, *args], check=True,
                              capture_output=True, text=True).stdout

    main = run("--help").rstrip("\n").split("\n")
    # The commands, as the help lists them: "  NAME ARGS" after "Commands:".
    cmds, inside = [], False
    for ln in main:
        if ln.startswith("Commands:"):
            inside = True
            continue
        if inside and not ln.strip():
            break
        m = re.match(r"^  ([a-z]+)\b", ln)
        if inside and m:
            cmds.append(m.group(1))
    out = []
    header("mlcctl", "1", version, "look into and operate an mlc arena", out)
    out.append(".SH SYNOPSIS")
    block([l[7:] if l.startswith("usage: ") else l.lstrip()
           for l in main[:2]], out)
    out.append(".SH DESCRIPTION")
    block(main[2:], out)
    out.append(".SH COMMANDS")
    for c in cmds:
        text = run(c, "--help").rstrip("\n").split("\n")
        out.append(".SS %s" % roff(c))
        block(text, out)
    out.append(".SH SEE ALSO")
    out.append(".BR mlc (3)")
    return "\n".join(out) + "\n"


def mlc_page(path, version):
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "gen_api_doc", os.path.join(here, "gen-api-doc.py"))
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)
    top, sections = api.parse(path)
    out = []
    header("mlc", "3", version,
           "a multi-level shared-memory key/value cache", out)
    out.append(".SH SYNOPSIS")
    block(["#include <mlc.h>", "",
           "cc ... $(pkg-config --cflags --libs mlc)"], out)
    out.append(".SH DESCRIPTION")
    block(top, out)
    for sec in sections:
        out.append(".SH %s" % roff(sec["title"].upper()))
        if sec["intro"]:
            block(sec["intro"], out)
        for g in sec["groups"]:
            out.append(".SS %s" % roff(", ".join(g["names"])))
            code = []
            for c in g["code"]:
                code.extend(l.expandtabs(8) for l in c.split("\n"))
            block(code, out)
            if g["doc"]:
                out.append(".PP")
                block(g["doc"], out)
    out.append(".SH SEE ALSO")
    out.append(".BR mlcctl (1)")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("mlcctl", "mlc"):
        sys.exit("usage: gen-man.py mlcctl MLCCTL VERSION | "
                 "mlc HEADER VERSION")
    page = mlcctl_page if sys.argv[1] == "mlcctl" else mlc_page
    sys.stdout.write(page(sys.argv[2], sys.argv[3]))


if __name__ == "__main__":
    main()
