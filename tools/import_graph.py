"""Import graph of src/otlens (stdlib ast only): intra-package import arrows at module top vs in function
bodies, and the cycles (strongly connected components), with and without function-body imports.

Usage: python tools/import_graph.py [src/otlens] [-v: list function-body imports] [-e: list every module's arrows]
"""
import ast, pathlib, sys
args = [a for a in sys.argv[1:] if not a.startswith("-")]
root = pathlib.Path(args[0] if args else "src/otlens")
pkg = "otlens"
mods = {}
for p in sorted(root.rglob("*.py")):
    rel = p.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    mods[".".join(parts)] = p
def resolve(modname, node, is_pkg):
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.startswith(pkg): out.append(a.name)
    else:
        if node.level:
            base = modname.split(".")
            if not is_pkg: base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not target.startswith(pkg): return out
        for a in node.names:
            cand = target + "." + a.name
            out.append(cand if cand in mods else target)
    return out
top, body = {}, {}
nbody = 0
for m, p in mods.items():
    tree = ast.parse(p.read_text())
    is_pkg = p.name == "__init__.py"
    top[m], body[m] = set(), set()
    def visit(node, depth):
        global nbody
        for ch in ast.iter_child_nodes(node):
            d = depth + isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(ch, (ast.Import, ast.ImportFrom)):
                tg = [t for t in resolve(m, ch, is_pkg) if t != m]
                tg = [t for t in tg if t in mods]
                if tg:
                    if depth: body[m].update(tg); nbody += 1; print(f"  body: {m}:{ch.lineno} -> {sorted(set(tg))}") if "-v" in sys.argv else None
                    else: top[m].update(tg)
            visit(ch, d)
    visit(tree, 0)
# SCCs on top-level graph and on full graph (excluding the package __init__)
def sccs(g):
    idx, low, st, on, res, c = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: res.append(sorted(comp))
    for v in g:
        if v not in idx: sc(v)
    return res
strip = lambda g: {k: {t for t in v if t != pkg} for k, v in g.items() if k != pkg}
full = {m: top[m] | body[m] for m in mods}
print("modules:", len(mods), "lines:", sum(len(p.read_text().splitlines()) for p in mods.values()))
print("intra-package imports in function bodies:", nbody)
print("top-level import arrows:", sum(len(v) for v in strip(top).values()), " all arrows (incl. body):", sum(len(v) for v in strip(full).values()))
print("cycles (top-level only):", sccs(strip(top)))
print("cycles (incl. function-body):", sccs(strip(full)))
if "-e" in sys.argv:
    for m in sorted(mods):
        print(m, "->", sorted(top[m]), "| body:", sorted(body[m] - top[m]))
