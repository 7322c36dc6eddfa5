//! `cargo xtask deps`: the crate dependency rules of ARCHITECTURE.md, checked against
//! `cargo metadata` (not left to review).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::util::{cargo, root};

/// Which workspace crates each workspace crate may depend on (normal and build dependencies).
/// `None`: anything (the server wires everything together).
fn allowed_workspace_deps(package: &str) -> Option<&'static [&'static str]> {
    const PROVIDER: &[&str] = &["mcpgate-core", "mcpgate-provider-kit"];
    Some(match package {
        "mcpgate-core" | "mcpgate-guard" | "xtask" => &[],
        "mcpgate-crypto"
        | "mcpgate-rbac"
        | "mcpgate-storage"
        | "mcpgate-provider-kit"
        | "mcpgate-pages" => &["mcpgate-core"],
        "mcpgate-credentials" => &["mcpgate-core", "mcpgate-crypto"],
        "mcpgate-providers" => &[
            "mcpgate-core",
            "mcpgate-provider-oidc",
            "mcpgate-provider-keycloak",
            "mcpgate-provider-google",
            "mcpgate-provider-github",
            "mcpgate-provider-atlassian",
            "mcpgate-provider-salesforce",
        ],
        p if p.starts_with("mcpgate-provider-") => PROVIDER,
        _ => return None,
    })
}

/// External crates only one workspace crate may name directly.
const OWNED: &[(&str, &[&str])] = &[
    (
        "mcpgate-storage",
        &[
            "diesel",
            "diesel-async",
            "diesel_migrations",
            "deadpool",
            "libsqlite3-sys",
        ],
    ),
    ("mcpgate-crypto", &["argon2", "chacha20poly1305"]),
];

/// HTTP clients storage must not reach even transitively: a unit of work cannot call out.
const HTTP_CLIENTS: &[&str] = &[
    "reqwest",
    "ureq",
    "isahc",
    "surf",
    "attohttpc",
    "awc",
    "hyper-rustls",
    "hyper-tls",
];

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    resolve: Resolve,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    kind: Option<String>,
}

/// The resolved graph by package name, without dev-dependencies.
struct Graph {
    members: BTreeSet<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn from_metadata(meta: &Metadata) -> Self {
        let names: BTreeMap<&str, &str> = meta
            .packages
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let name = |id: &str| names.get(id).copied().unwrap_or(id).to_owned();
        let members = meta.workspace_members.iter().map(|id| name(id)).collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for node in &meta.resolve.nodes {
            let entry = edges.entry(name(&node.id)).or_default();
            for dep in &node.deps {
                if dep
                    .dep_kinds
                    .iter()
                    .any(|k| k.kind.as_deref() != Some("dev"))
                {
                    entry.insert(name(&dep.pkg));
                }
            }
        }
        Self { members, edges }
    }

    fn direct(&self, package: &str) -> impl Iterator<Item = &String> {
        self.edges.get(package).into_iter().flatten()
    }

    fn transitive(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = vec![package];
        while let Some(p) = stack.pop() {
            for d in self.direct(p) {
                if seen.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
        seen
    }
}

fn check_graph(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for member in &graph.members {
        for dep in graph.direct(member) {
            if graph.members.contains(dep)
                && let Some(allowed) = allowed_workspace_deps(member)
                && !allowed.contains(&dep.as_str())
            {
                problems.push(format!("{member} must not depend on {dep}"));
            }
            for (owner, crates) in OWNED {
                if crates.contains(&dep.as_str()) && member != owner {
                    problems.push(format!(
                        "{member} must not depend on {dep}: only {owner} may"
                    ));
                }
            }
        }
    }
    let storage = graph.transitive("mcpgate-storage");
    for dep in &storage {
        if HTTP_CLIENTS.contains(&dep.as_str()) {
            problems.push(format!(
                "mcpgate-storage reaches the HTTP client {dep}: a unit of work must not call out"
            ));
        }
        if dep == "mcpgate-crypto" || dep.starts_with("mcpgate-provider") {
            problems.push(format!("mcpgate-storage must not reach {dep}"));
        }
    }
    problems
}

/// No public item of storage may name diesel, deadpool or a connection: callers get units of
/// work, never the means to hold a connection.
fn check_storage_api(file: &str, source: &str) -> Vec<String> {
    const LEAKS: &[&str] = &["diesel", "deadpool", "Connection", "Pool<", "Object<"];
    let mut problems = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    let mut in_tests = false;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        if in_tests || !trimmed.starts_with("pub ") {
            continue;
        }
        // A function's signature runs until its body; any other item is one line.
        let is_fn = trimmed.contains("fn ");
        let mut signature = String::new();
        for l in &lines[i..] {
            signature.push_str(l);
            signature.push('\n');
            if !is_fn || l.contains('{') || l.trim_end().ends_with(';') {
                break;
            }
        }
        let signature = signature.split('{').next().unwrap_or("");
        if let Some(leak) = LEAKS.iter().find(|leak| signature.contains(*leak)) {
            problems.push(format!(
                "{file}:{}: public item names `{leak}`: {}",
                i + 1,
                line.trim()
            ));
        }
    }
    problems
}

fn storage_sources(dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            storage_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            let shown = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((shown, text));
        }
    }
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    eprintln!("\n==> dependency rules (cargo xtask deps)");
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--all-features"])
        .output()
        .context("cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed");
    }
    let meta: Metadata = serde_json::from_slice(&output.stdout).context("cargo metadata JSON")?;
    let mut problems = check_graph(&Graph::from_metadata(&meta));
    let mut sources = Vec::new();
    storage_sources(&root().join("crates/storage/src"), &mut sources)?;
    for (file, text) in &sources {
        problems.extend(check_storage_api(file, text));
    }
    if problems.is_empty() {
        eprintln!("dependency rules hold");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("  ✗ {p}");
        }
        bail!("{} dependency rule violation(s)", problems.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(members: &[&str], edges: &[(&str, &str)]) -> Graph {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            map.entry((*from).into()).or_default().insert((*to).into());
        }
        Graph {
            members: members.iter().map(|m| (*m).into()).collect(),
            edges: map,
        }
    }

    const MEMBERS: &[&str] = &[
        "mcpgate-core",
        "mcpgate-crypto",
        "mcpgate-storage",
        "mcpgate-server",
        "mcpgate-provider-github",
        "mcpgate-provider-kit",
        "mcpgate-credentials",
    ];

    #[test]
    fn the_intended_shape_passes() {
        let g = graph(
            MEMBERS,
            &[
                ("mcpgate-storage", "mcpgate-core"),
                ("mcpgate-storage", "diesel"),
                ("mcpgate-crypto", "argon2"),
                ("mcpgate-provider-github", "mcpgate-provider-kit"),
                ("mcpgate-provider-kit", "reqwest"),
                ("mcpgate-server", "mcpgate-storage"),
                ("mcpgate-server", "reqwest"),
                ("mcpgate-credentials", "mcpgate-core"),
                ("mcpgate-credentials", "mcpgate-crypto"),
                ("mcpgate-credentials", "reqwest"),
            ],
        );
        assert_eq!(check_graph(&g), Vec::<String>::new());
    }

    #[test]
    fn catches_every_kind_of_violation() {
        let g = graph(
            MEMBERS,
            &[
                ("mcpgate-core", "mcpgate-crypto"),
                ("mcpgate-storage", "tokio-thing"),
                ("tokio-thing", "reqwest"),
                ("mcpgate-storage", "mcpgate-crypto"),
                ("mcpgate-server", "diesel"),
                ("mcpgate-provider-github", "chacha20poly1305"),
                ("mcpgate-credentials", "mcpgate-storage"),
            ],
        );
        let problems = check_graph(&g);
        let expected = [
            "mcpgate-core must not depend on mcpgate-crypto",
            "mcpgate-credentials must not depend on mcpgate-storage",
            "mcpgate-provider-github must not depend on chacha20poly1305: only mcpgate-crypto may",
            "mcpgate-server must not depend on diesel: only mcpgate-storage may",
            "mcpgate-storage must not depend on mcpgate-crypto",
            "mcpgate-storage reaches the HTTP client reqwest: a unit of work must not call out",
            "mcpgate-storage must not reach mcpgate-crypto",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p == e),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn storage_api_leaks_are_caught() {
        let source = "pub struct Store {\n    pub(crate) pools: Pools,\n}\n\
            pub async fn borrow(\n    &self,\n) -> Object<PgManager> {\n}\n\
            pub fn fine(&self) -> u32 {\n}\n\
            pub use diesel::Connection;\n\
            pub(crate) fn internal(c: &mut AsyncPgConnection) {}\n\
            #[cfg(test)]\nmod tests {\n    pub fn helper(c: diesel::PgConnection) {}\n}\n";
        let problems = check_storage_api("lib.rs", source);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("lib.rs:4:"), "{problems:#?}");
        assert!(problems[1].contains("`diesel`"), "{problems:#?}");
    }
}
