#!/usr/bin/env python3
"""gen_lazy.py LIB HEADER... -- SYMBOL... : prints FN/FNV lines for
cli/lazylib.c, one per symbol, with the prototype the preprocessed headers
give (return type, named parameters, the arguments passed on)."""
import re, subprocess, sys

args = sys.argv[1:]
lib = args[0]
sep = args.index("--")
headers, syms = args[1:sep], args[sep + 1:]
cflags = subprocess.run(["pkg-config", "--cflags", "libgit2", "libxml-2.0", "libcrypto"],
                        capture_output=True, text=True).stdout.split()
src = "".join("#include <%s>\n" % h for h in headers)
pp = subprocess.run(["cc", "-E", "-P", "-D_GNU_SOURCE"] + cflags + ["-x", "c", "-"],
                    input=src, capture_output=True, text=True, check=True).stdout
pp = re.sub(r"__attribute__\s*\(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\)", " ", pp)
pp = re.sub(r"\s+", " ", pp)

def split_top(s):
    out, depth, cur = [], 0, ""
    for c in s:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur.strip()); cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur.strip())
    return out

for name in syms:
    m = None
    for mm in re.finditer(r"([;}]|^)\s*([^;{}()]*?)\b%s\s*\(" % re.escape(name), pp):
        m = mm
        break
    if not m:
        sys.exit("no prototype for " + name)
    ret = re.sub(r"\b(extern|static|inline)\b", "", m.group(2)).strip()
    i = m.end()
    depth, j = 1, i
    while depth:
        if pp[j] == "(":
            depth += 1
        elif pp[j] == ")":
            depth -= 1
        j += 1
    params = pp[i:j - 1].strip()
    ps = split_top(params)
    if ps == ["void"] or not ps:
        names = []
        params = "void"
    else:
        names = []
        for p in ps:
            if p == "...":
                sys.exit("variadic: " + name)
            fm = re.search(r"\(\s*\*\s*(\w+)\s*\)", p)
            if fm:
                names.append(fm.group(1)); continue
            am = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", p)
            if not am or am.group(1) in ("int", "char", "void", "size_t", "double", "long",
                                         "unsigned") or p.strip().endswith("*"):
                sys.exit("unnamed parameter in %s: %s" % (name, p))
            names.append(am.group(1))
    args_s = "(" + ", ".join(names) + ")"
    if ret == "void":
        print("FNV(%s, %s, (%s), %s)" % (lib, name, params, args_s))
    else:
        print("FN(%s, %s, %s, (%s), %s)" % (lib, ret, name, params, args_s))
