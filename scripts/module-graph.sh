#!/usr/bin/env bash
# Prints the module graph inside each crate of the workspace (and each test and fuzz target) and exits 1 when a crate
# has a cycle of modules (issue 23: "no module circle anywhere, tests included"). `tests/it/module_graph.rs` runs it.
#
#   scripts/module-graph.sh                 # every crate: its edges, then `ok` or its cycles; exit 1 on any cycle
#   scripts/module-graph.sh --quiet         # only a summary line per crate, and the cycles
#   scripts/module-graph.sh --root DIR      # another workspace (the self-test's)
#   scripts/module-graph.sh --known FILE    # exit 1 only when the cycles differ from FILE's list, either way (a
#                                           # new cycle, or a listed one that is gone: shrink the list)
#
# What counts as an edge `a -> b`: a path written in module `a` (in a `use`, or in code: `crate::url::ensure(…)`)
# that starts with `crate::`, `super::`, `self::` or the name of a child module of `a`, and names module `b`, or an
# item of `b` (the longest module prefix of the path wins). Use groups (`use crate::{a::X, b::{self, Y}}`) are
# expanded. Inline modules (`mod tests { … }`) belong to their file's module, with `super::` resolved from them.
# A module's re-exports of its own submodules' items (`pub use read::import` in bundle.rs, `pub use x::Y` in
# lib.rs) are not edges: the parent is its children's façade, and only what its own code uses counts. Comments and string literals are skipped. Other crates' paths are not edges
# (the crates' own graph is Cargo's and is acyclic by construction).
set -euo pipefail
known_list=()
root="$(dirname "$0")/.."
arguments=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --known) known_list=(--known "$(realpath "$2")"); shift 2 ;;
        *) arguments+=("$1"); shift ;;
    esac
done
cd "$root"
exec python3 - ${arguments[@]+"${arguments[@]}"} ${known_list[@]+"${known_list[@]}"} <<'PY'
import glob, os, re, sys

arguments = sys.argv[1:]
quiet = "--quiet" in arguments
known = None
if "--known" in arguments:
    with open(arguments[arguments.index("--known") + 1], encoding="utf-8") as listed:
        known = {line.strip() for line in listed if line.strip() and not line.startswith("#")}

def strip(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
            out.append(" ")
        elif re.match(r'b?r#*"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x..|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)

TOKEN = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*|::|[{}();,#\[\]*]|\S")

def tokens(text):
    return TOKEN.findall(strip(text))

def children(toks):
    """`mod name;` declarations at the top level of a file (not inline modules, not in a cfg'd-out block)."""
    names, depth = [], 0
    for k, t in enumerate(toks):
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        elif t == "mod" and depth == 0 and k + 2 < len(toks) and toks[k + 2] == ";":
            names.append(toks[k + 1])
    return names

def module_tree(root):
    """{module path (tuple): file} for the crate whose root file is `root`."""
    modules, stack = {}, [((), root)]
    while stack:
        path, file = stack.pop()
        modules[path] = file
        base = os.path.basename(file)
        directory = os.path.dirname(file) if (path == () or base == "mod.rs") else file[:-3]
        for name in children(tokens(open(file, encoding="utf-8").read())):
            for candidate in (os.path.join(directory, name + ".rs"), os.path.join(directory, name, "mod.rs")):
                if os.path.exists(candidate):
                    stack.append((path + (name,), candidate))
                    break
    return modules

def parse_path(toks, k):
    """The paths (lists of segments) written from toks[k], a use tree or an expression path; and where it ends."""
    prefix = [toks[k]]
    k += 1
    while k + 1 < len(toks) and toks[k] == "::":
        nxt = toks[k + 1]
        if nxt == "{":
            paths, k = [], k + 2
            while k < len(toks) and toks[k] != "}":
                if toks[k] == ",":
                    k += 1
                    continue
                if toks[k] == "*":
                    paths.append(prefix[:])
                    k += 1
                    continue
                sub, k = parse_path(toks, k)
                paths.extend(prefix + p for p in sub)
                while k < len(toks) and toks[k] not in (",", "}"):
                    k += 1  # `as name`
            return paths, k + 1
        if nxt == "*" or not re.match(r"[A-Za-z_]", nxt):
            return [prefix], k + 2
        prefix.append(nxt)
        k += 2
    return [prefix], k

def edges_of(modules):
    edges = {m: set() for m in modules}
    for module, file in modules.items():
        toks = tokens(open(file, encoding="utf-8").read())
        kids = {m[-1] for m in modules if len(m) == len(module) + 1 and m[:-1] == module}
        inline, depth, reexport = [], 0, False
        k = 0
        while k < len(toks):
            t = toks[k]
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if inline and inline[-1] == depth:
                    inline.pop()
            elif t == "mod" and k + 2 < len(toks) and toks[k + 2] == "{":
                inline.append(depth)
            elif t == "use":
                reexport = k > 0 and (toks[k - 1] == "pub" or toks[k - 1] == ")")
            elif t == ";":
                reexport = False
            anchor = t.lstrip("$")
            if (anchor in ("crate", "super", "self") or (t in kids and not inline)) \
                    and (k == 0 or toks[k - 1] != "::") and k + 1 < len(toks) and toks[k + 1] == "::":
                paths, end = parse_path(toks, k)
                for path in paths:
                    target = resolve(module, len(inline), path, modules)
                    facade = reexport and target[:len(module)] == module
                    if target is not None and target != module and not facade:
                        edges[module].add(target)
                k = max(end, k + 1)
                continue
            k += 1
    return edges

def resolve(module, inline_depth, path, modules):
    head, rest = path[0].lstrip("$"), list(path[1:])
    if head == "crate":
        base = ()
    elif head == "self":
        base = module
    elif head == "super":
        base, levels = module, 1
        while rest and rest[0] == "super":
            levels, rest = levels + 1, rest[1:]
        levels -= inline_depth  # `super` from an inline module first climbs to its file's module
        if levels > 0:
            base = module[:-levels] if levels <= len(module) else ()
    else:
        base, rest = module + (head,), rest
    while rest and rest[0] != "self" and base + (rest[0],) in modules:
        base, rest = base + (rest[0],), rest[1:]
    return base if base in modules else None

def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out

def name(module):
    return "::".join(module) or "(root)"

roots = sorted(
    set(glob.glob("*/src/lib.rs")) | set(glob.glob("*/src/main.rs")) | set(glob.glob("*/src/bin/*.rs"))
    | {"cli/main.rs", "tests/it/main.rs"} | set(glob.glob("*/tests/*.rs")) | set(glob.glob("*/benches/*.rs"))
    | set(glob.glob("fuzz/fuzz_targets/*.rs"))
)
found_all = set()
for root in roots:
    if not os.path.exists(root):
        continue
    modules = module_tree(root)
    edges = edges_of(modules)
    found = cycles(edges)
    count = sum(len(targets) for targets in edges.values())
    verdict = "CYCLE" if found else "ok"
    print(f"{root}: {len(modules)} modules, {count} edges, {verdict}")
    if not quiet:
        for module in sorted(edges):
            if edges[module]:
                print(f"  {name(module)} -> {', '.join(name(t) for t in sorted(edges[module]))}")
    for component in found:
        found_all.add(f"{root}: {' <-> '.join(name(m) for m in component)}")
        print(f"  cycle: {' <-> '.join(name(m) for m in component)}")
        for module in component:
            inside = sorted(t for t in edges[module] if t in component)
            print(f"    {name(module)} -> {', '.join(name(t) for t in inside)}")
if known is None:
    sys.exit(1 if found_all else 0)
for cycle in sorted(found_all - known):
    print(f"new cycle (not in the known list): {cycle}")
for cycle in sorted(known - found_all):
    print(f"listed cycle is gone (remove it from the known list): {cycle}")
sys.exit(0 if found_all == known else 1)
PY
