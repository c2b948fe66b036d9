//! Imports go one way (`src/lib.rs`, "Reading order"): no module imports another that imports
//! it back, no file within a module does, and each module of the layer table imports only from
//! layers below its own. The check reads the sources: every `crate::name` path (including the
//! items of a `crate::{..}` group, with the root's re-exports resolved to the module that
//! defines them) and every `super::name` that names a sibling file. Comment lines are skipped,
//! so a doc link may point anywhere.

mod common;

use common::rust_files;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layer table of `src/lib.rs`, bottom first.
const LAYERS: &[&[&str]] = &[
    &["tensor", "tokenizer", "profile", "memory", "svg"],
    &[
        "kernels",
        "params",
        "threads",
        "data",
        "metrics",
        "learning_curve",
        "growth_chart",
    ],
    &["gradients", "cli"],
    &["tape", "optim"],
    &["ops", "gradcheck"],
    &["nn"],
    &["generate", "checkpoint"],
    &["trainer", "beam_search"],
    &["objectives"],
    &["recipe", "attention_map", "hf"],
    &["inspect", "inspect_images", "scaling"],
];

/// The source without its comment lines.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first name of every path after `prefix` (`crate::` or `super::`), and of every item of
/// a `prefix{..}` group (nested groups included).
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item_start) = (0, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        item_start = true;
                        continue;
                    }
                    c if c.is_whitespace() => continue,
                    _ => {}
                }
                if item_start && depth == 0 {
                    names.insert(ident_at(&group[j..]).to_string());
                    item_start = false;
                }
            }
        } else {
            names.insert(ident_at(rest).to_string());
        }
    }
    names.remove("");
    names
}

/// `pub use module::{A, B};` lines of `src/lib.rs`: item name -> defining module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = ident_at(rest).to_string();
        let items = rest[module.len()..].trim_start_matches("::");
        let items = items.trim_end_matches(';').trim_matches(|c| c == '{' || c == '}');
        for item in items.split(',') {
            map.insert(item.trim().to_string(), module.clone());
        }
    }
    map
}

struct Graph {
    /// top-level module -> the modules it imports
    modules: BTreeMap<String, BTreeSet<String>>,
    /// file -> the sibling files it imports through `super::`
    files: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut g = Graph {
        modules: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    for path in paths {
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let code = code(&path);
        let targets = g.modules.entry(module.clone()).or_default();
        for name in names_after(&code, "crate::") {
            let target = reexports.get(&name).cloned().unwrap_or(name);
            if target != module {
                targets.insert(target);
            }
        }
        if path.file_name().unwrap() != "mod.rs" {
            let dir = path.parent().unwrap();
            let siblings = g.files.entry(path.clone()).or_default();
            for name in names_after(&code, "super::") {
                let sibling = dir.join(format!("{name}.rs"));
                if sibling.exists() {
                    siblings.insert(sibling);
                }
            }
        }
    }
    g
}

/// The nodes reachable from `start` (not counting `start` unless a cycle leads back).
fn reachable<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>, start: &N) -> BTreeSet<N> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<N> = edges.get(start).into_iter().flatten().cloned().collect();
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone()) {
            stack.extend(edges.get(&n).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_reader_finds_imports_through_paths_groups_and_reexports() {
    let code = "use crate::{Params, Tape, Var};\nuse crate::nn::{Encoder, MlmHead};\nuse crate::ops::{\n    AttentionMask,\n};\n// use crate::recipe;\nlet x = crate::profile::enabled();";
    let names = names_after(
        &code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"),
        "crate::",
    );
    let want: BTreeSet<String> = ["Params", "Tape", "Var", "nn", "ops", "profile"]
        .map(String::from)
        .into();
    assert_eq!(names, want);
    let g = graph();
    // Edges known from the code, so the graph cannot be empty by mistake.
    assert!(g.modules["ops"].contains("kernels"));
    assert!(g.modules["ops"].contains("tape"));
    assert!(g.modules["objectives"].contains("nn"));
    assert!(g.modules["trainer"].contains("optim"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert!(g.files[&src.join("nn/encoder.rs")].contains(&src.join("nn/encoder_layer.rs")));
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    for module in g.modules.keys() {
        assert!(
            !reachable(&g.modules, module).contains(module),
            "module '{module}' imports a module that imports it back (directly or through others): {:?}",
            g.modules[module]
        );
    }
}

#[test]
fn no_file_imports_a_sibling_that_imports_it_back() {
    let g = graph();
    for file in g.files.keys() {
        assert!(
            !reachable(&g.files, file).contains(file),
            "{} is in an import cycle with its siblings: {:?}",
            file.display(),
            g.files[file]
        );
    }
}

#[test]
fn each_module_imports_only_from_lower_layers() {
    let layer: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, ms)| ms.iter().map(move |m| (*m, i)))
        .collect();
    let g = graph();
    for (module, targets) in &g.modules {
        let Some(&own) = layer.get(module.as_str()) else {
            continue; // a module the table does not list yet: the cycle test still covers it
        };
        for target in targets {
            if let Some(&theirs) = layer.get(target.as_str()) {
                assert!(
                    theirs < own,
                    "'{module}' (layer {own}) imports '{target}' (layer {theirs}): imports must point to lower layers (src/lib.rs)"
                );
            }
        }
    }
}
