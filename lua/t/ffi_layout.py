#!/usr/bin/env python3
"""The FFI declarations of lua/lib/resty/mlc.lua against include/mlc.h.

  ffi_layout.py MLC_LUA MLC_H OUT_C

Reads the ffi.cdef block and the enum table K of resty.mlc, checks that
every struct declared there has the header's fields in the header's order
(exit 1 with a message if not), and writes a C program to OUT_C that prints
each struct's sizeof and each field's offsetof, and each constant's value,
as the C compiler sees them through mlc.h:

  size <struct> <n> | off <struct> <field> <n> | const <NAME> <n>

lua/t/run.sh compiles and runs it; the test ffi_layout in t/mlc_t.lua
compares every line with ffi.sizeof / ffi.offsetof / resty.mlc's constants
inside nginx, so a struct or constant that drifts fails the suite."""
import re
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return "\n".join(l for l in text.splitlines()
                     if not l.lstrip().startswith("#"))


def structs(text):
    """{name: [field, ...]} of every struct definition in text."""
    out = {}
    for m in re.finditer(r"struct\s+(\w+)\s*\{(.*?)\}\s*;", text, re.S):
        name, body = m.group(1), m.group(2)
        fields = []
        for decl in body.split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fp:
                fields.append(fp.group(1))
                continue
            parts = decl.split(",")
            first = re.sub(r"\[[^\]]*\]", "", parts[0]).strip()
            fields.append(re.findall(r"\w+", first)[-1])
            for p in parts[1:]:
                fields.append(re.findall(r"\w+",
                                         re.sub(r"\[[^\]]*\]", "", p))[0])
        out[name] = fields
    return out


def main():
    lua_src = open(sys.argv[1]).read()
    hdr = structs(strip_comments(open(sys.argv[2]).read()))
    m = re.search(r"ffi\.cdef\s*\[\[(.*?)\]\]", lua_src, re.S)
    if not m:
        sys.exit("no ffi.cdef [[ ... ]] block in " + sys.argv[1])
    lua = structs(m.group(1))
    bad = []
    for name, fields in lua.items():
        if name not in hdr:
            bad.append("struct %s is not in mlc.h" % name)
        elif fields != hdr[name]:
            bad.append("struct %s: resty.mlc has %s, mlc.h has %s"
                       % (name, fields, hdr[name]))
    if bad:
        sys.exit("\n".join(bad))
    km = re.search(r"local K = \{(.*?)\n\}", lua_src, re.S)
    consts = re.findall(r"(MLC_\w+)\s*=\s*(-?\d+)", km.group(1)) if km else []
    out = ["#include <stddef.h>", "#include <stdio.h>", '#include "mlc.h"',
           "int main(void)", "{"]
    for name, fields in sorted(lua.items()):
        out.append('\tprintf("size %s %%zu\\n", sizeof(struct %s));'
                   % (name, name))
        for f in fields:
            out.append('\tprintf("off %s %s %%zu\\n", '
                       'offsetof(struct %s, %s));' % (name, f, name, f))
    for name, _ in consts:
        out.append('\tprintf("const %s %%lld\\n", (long long)%s);'
                   % (name, name))
    out += ["\treturn 0;", "}", ""]
    open(sys.argv[3], "w").write("\n".join(out))
    print("%d structs, %d fields, %d constants"
          % (len(lua), sum(len(f) for f in lua.values()), len(consts)))


main()
