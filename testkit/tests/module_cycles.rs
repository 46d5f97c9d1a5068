//! No module of any workspace crate imports one that imports it back: an import cycle
//! means a shared concept has no home of its own (DEVELOPERS.md, "How we build").
//!
//! Every `.rs` file under a crate's `src/` is a module (`mod.rs` its folder's). A module
//! imports another when it names it in a path: `crate::a::b::Item`, `super::b`, a
//! group (`crate::a::{b, c::d}`), or, in a folder's `mod.rs`, one of its own children
//! (`use child::…`, `pub use child::…`). A path names the deepest module it reaches;
//! naming an item a folder's `mod.rs` re-exports names that `mod.rs`, which imports the
//! child it comes from. A module's own ancestors are not counted: a child reading what
//! its parent defines is how a folder shares its vocabulary. Comments are left out,
//! tests are not: a test that imports back is a cycle too. Binaries under `src/bin/`
//! are crates of their own and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module: its path below `src/`, without `.rs` and without `mod` (`storage/memory`).
type Module = Vec<String>;

/// The workspace's crates with a `src/`: each member's folder, and its `src/`.
fn crates() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let members = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a members line");
    let crates: Vec<(String, PathBuf)> = members
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|m| (m.to_owned(), root.join(m).join("src")))
        .filter(|(_, src)| src.is_dir())
        .collect();
    assert!(crates.len() >= 5, "the workspace's crates: {crates:?}");
    crates
}

/// Every `.rs` file below `dir`, but those of `src/bin/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            let bins = dir.file_name().is_some_and(|n| n == "src")
                && path.file_name().is_some_and(|n| n == "bin");
            if !bins {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file below `src` is; `None` for a crate root.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    let root = parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main");
    (!parts.is_empty() && !root).then_some(parts)
}

/// `text` as code only: comments left out, and the contents of string and character
/// literals (whose braces and `crate::` are not code).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && matches!(next, Some('#' | '"')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#, r##"…"## (b and c prefixes end in `r` too).
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len()
                && !(chars[i] == '"'
                    && chars[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes)
            {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{7f}'); a lifetime has no closing quote.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the character before `at` belongs to an identifier (`for` in `for"…"` does
/// not happen; `br"…"` and `hr` do).
fn ident_before(chars: &[char], at: usize) -> bool {
    at > 0 && is_ident(chars[at - 1]) && !matches!(chars[at - 1], 'b' | 'c')
}

/// Where the brace that closes the one at `open` is (the end of `code` if none does).
fn closing_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    code[open..]
        .char_indices()
        .find(|&(_, c)| {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map_or(code.len(), |(i, _)| open + i)
}

/// Where each inline module (`mod tests { … }`) of `code` begins and ends.
fn inline_modules(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("mod ").map(|i| i + from) {
        from = at + 4;
        if at > 0 && is_ident(bytes[at - 1] as char) {
            continue;
        }
        let rest = &code[from..];
        let name = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if name == 0 || !rest[name..].trim_start().starts_with('{') {
            continue;
        }
        let open = from + name + rest[name..].find('{').expect("a brace");
        spans.push((open, closing_brace(code, open)));
    }
    spans
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths of a use tree's group body (`b, c::{d, e}`), each as its segments.
fn expand_group(prefix: &[String], body: &str, out: &mut Vec<Module>) {
    let mut depth = 0;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    for item in items {
        let item = item.trim();
        let item = item.split(" as ").next().unwrap_or(item).trim();
        if let Some(open) = item.find('{') {
            let close = item.rfind('}').unwrap_or(item.len());
            let mut inner = prefix.to_vec();
            inner.extend(segments(&item[..open]));
            expand_group(&inner, &item[open + 1..close], out);
        } else if !item.is_empty() {
            let mut path = prefix.to_vec();
            path.extend(segments(item));
            out.push(path);
        }
    }
}

/// `a::b::` as `["a", "b"]`.
fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Every path a file names from `crate::` or `super::` on, as (`true` for `crate`,
/// the `super`s climbed from the file's module, the segments after them): a `super::`
/// inside an inline module (`mod tests`) climbs out of that one first, so it counts
/// one less, and may stay in the file (then it is no import at all, and left out).
fn named_paths(code: &str) -> Vec<(bool, usize, Module)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let inline = inline_modules(code);
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(anchor).map(|i| i + from) {
            from = at + anchor.len();
            if at > 0 && is_ident(bytes[at - 1] as char) {
                continue;
            }
            if anchor == "super::" && at >= 7 && &code[at - 7..at] == "super::" {
                continue; // counted from the first `super::`
            }
            let mut ups = usize::from(anchor == "super::");
            let mut rest = &code[from..];
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            if anchor == "super::" {
                let depth = inline.iter().filter(|&&(o, c)| o < at && at < c).count();
                match ups.checked_sub(depth) {
                    Some(0) | None => continue,
                    Some(left) => ups = left,
                }
            }
            let end = rest
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(rest.len());
            let prefix: Module = segments(&rest[..end]).collect();
            let mut paths = Vec::new();
            if rest[end..].starts_with('{') {
                let close = closing_brace(rest, end);
                expand_group(&prefix, &rest[end + 1..close], &mut paths);
            } else {
                paths.push(prefix);
            }
            found.extend(paths.into_iter().map(|p| (anchor == "crate::", ups, p)));
        }
    }
    found
}

/// The children a folder's module names in its own `use` lines (`use child::…`).
fn used_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            let line = line.strip_prefix("pub(super) ").unwrap_or(line);
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let rest = line.strip_prefix("use ")?;
            let rest = rest.strip_prefix("self::").unwrap_or(rest);
            let end = rest.find(|c: char| !is_ident(c))?;
            rest[end..]
                .starts_with("::")
                .then(|| rest[..end].to_owned())
        })
        .collect()
}

/// The deepest module `path` reaches.
fn deepest(modules: &BTreeSet<Module>, path: &[String]) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

/// Every module of one crate and the modules it imports.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let code: BTreeMap<Module, String> = files
        .iter()
        .filter_map(|f| {
            let module = module_of(src, f)?;
            let text = std::fs::read_to_string(f).expect("a readable source file");
            Some((module, code_only(&text)))
        })
        .collect();
    let modules: BTreeSet<Module> = code.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &code {
        let mut to = BTreeSet::new();
        let mut add = |target: Option<Module>| {
            if let Some(t) = target {
                let ancestor = t.len() <= module.len() && module[..t.len()] == t[..];
                if !ancestor {
                    to.insert(t);
                }
            }
        };
        for (from_crate, ups, path) in named_paths(text) {
            let full = if from_crate {
                path
            } else {
                // `super::` in `a/b.rs` and in `a/b/mod.rs` is `a`.
                let Some(base) = module.len().checked_sub(ups) else {
                    continue;
                };
                module[..base].iter().cloned().chain(path).collect()
            };
            add(deepest(&modules, &full));
        }
        for child in used_children(text) {
            let path: Module = module.iter().cloned().chain([child]).collect();
            add(modules.contains(&path).then_some(path));
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'g> {
        edges: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.edges[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let at = self
                    .stack
                    .iter()
                    .rposition(|m| *m == v)
                    .expect("on the stack");
                let component: Vec<Module> = self.stack.drain(at..).cloned().collect();
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut said = Vec::new();
    let mut modules = 0;
    for (name, src) in crates() {
        let edges = graph(&src);
        modules += edges.len();
        for component in cycles(&edges) {
            let shown = |m: &Module| format!("{name}/src/{}", m.join("/"));
            let mut lines = vec![component.iter().map(shown).collect::<Vec<_>>().join(", ")];
            for from in &component {
                for to in edges[from].iter().filter(|t| component.contains(t)) {
                    lines.push(format!("  {} imports {}", shown(from), shown(to)));
                }
            }
            said.push(lines.join("\n"));
        }
    }
    assert!(modules > 100, "only {modules} modules were read");
    assert!(
        said.is_empty(),
        "modules that import each other (give the concept they share a home of its own):\n{}",
        said.join("\n")
    );
}

/// The reader finds a cycle where there is one: through a group, through `super::`,
/// and through a folder's `mod.rs` re-exporting its child.
#[test]
fn the_reader_sees_a_cycle_through_groups_super_and_re_exports() {
    let src = std::env::temp_dir().join(format!("deviceflow-module-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("store")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(src.join(path), text).unwrap();
    write("lib.rs", "mod pages;\nmod store;\n");
    write("store/mod.rs", "mod records;\npub use records::Record;\n");
    write(
        "store/records.rs",
        "// crate::pages is only a comment\npub struct Record;\n",
    );
    write("pages.rs", "use crate::{store::{Record}, x};\n");
    let acyclic = graph(&src);
    assert!(cycles(&acyclic).is_empty(), "{acyclic:?}");
    assert!(acyclic[&vec!["pages".to_owned()]].contains(&vec!["store".to_owned()]));

    // The record now reads the pages: records → pages → store → records.
    write(
        "store/records.rs",
        "use super::super::pages;\npub struct Record;\n",
    );
    let cyclic = graph(&src);
    let found = cycles(&cyclic);
    std::fs::remove_dir_all(&src).unwrap();
    assert_eq!(found.len(), 1, "{cyclic:?}");
    let mut names: Vec<String> = found[0].iter().map(|m| m.join("/")).collect();
    names.sort();
    assert_eq!(names, ["pages", "store", "store/records"]);
}
