//! mcpgate's upstream OAuth client (`mcpgate_credentials::user_oauth`, kind `user_oauth`)
//! against the official conformance suite's client authorization scenarios
//! (`conformance client --suite auth`, both protocol revisions, plus the scenarios the suite
//! only runs one by one): protected-resource discovery, metadata fallbacks, CIMD / DCR /
//! pre-registration, token endpoint auth methods, PKCE, `resource`, scope selection and
//! step-up, `iss`, issuer mismatch, authorization-server migration. The client under test is
//! the `oauth_conformance_client` binary of this package: the MCP handshake around the
//! gateway's own OAuth code.

use std::collections::BTreeMap;
use std::path::Path;

use mcpgate_tests::conformance::{Status, Suite};

/// Auth scenarios outside `--suite auth`, with the revision they belong to.
const ONE_BY_ONE: &[(&str, &str)] = &[
    ("auth/resource-mismatch", "2026-07-28"),
    ("auth/offline-access-scope", "2026-07-28"),
    ("auth/offline-access-not-supported", "2026-07-28"),
    ("auth/authorization-server-migration", "2026-07-28"),
    ("auth/iss-supported", "2026-07-28"),
    ("auth/iss-not-advertised", "2026-07-28"),
    ("auth/iss-supported-missing", "2026-07-28"),
    ("auth/iss-wrong-issuer", "2026-07-28"),
    ("auth/iss-unexpected", "2026-07-28"),
    ("auth/iss-normalized", "2026-07-28"),
    ("auth/metadata-issuer-mismatch", "2026-07-28"),
    ("auth/2025-03-26-oauth-metadata-backcompat", "2025-03-26"),
    ("auth/2025-03-26-oauth-endpoint-fallback", "2025-03-26"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_oauth_client_passes_the_client_auth_scenarios() -> anyhow::Result<()> {
    let Some(suite) = Suite::find("upstream_oauth_conformance")? else {
        return Ok(());
    };
    let client = Path::new(env!("CARGO_BIN_EXE_oauth_conformance_client"));
    let dir = tempfile::tempdir()?;
    // (revision, scenario) → (successes, problems)
    let mut table: BTreeMap<(String, String), (usize, Vec<String>)> = BTreeMap::new();
    let mut runs: Vec<(String, Vec<String>)> = ["2025-11-25", "2026-07-28"]
        .into_iter()
        .map(|v| {
            (
                v.to_owned(),
                vec![
                    "--suite".into(),
                    "auth".into(),
                    "--spec-version".into(),
                    v.into(),
                ],
            )
        })
        .collect();
    for (scenario, version) in ONE_BY_ONE {
        runs.push((
            (*version).to_owned(),
            vec![
                "--scenario".into(),
                (*scenario).into(),
                "--spec-version".into(),
                (*version).into(),
            ],
        ));
    }
    for (i, (version, args)) in runs.iter().enumerate() {
        let out = dir.path().join(format!("run-{i}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let results = suite.run_client(client, &args, &out).await?;
        for ((scenario, check), status) in results {
            let row = table
                .entry((version.clone(), scenario))
                .or_insert_with(|| (0, Vec::new()));
            match status {
                Status::Success => row.0 += 1,
                Status::Failure | Status::Warning => row.1.push(format!("{check}: {status:?}")),
                Status::Other => {}
            }
        }
    }
    eprintln!(
        "{:<12} {:<44} {:>6}  problems",
        "revision", "scenario", "passed"
    );
    for ((version, scenario), (passed, problems)) in &table {
        eprintln!(
            "{version:<12} {scenario:<44} {passed:>6}  {}",
            problems.join(", ")
        );
    }
    // Every scenario ran and none has a failed or warned check.
    assert_eq!(
        table.len(),
        14 * 2 + ONE_BY_ONE.len(),
        "scenarios run: {:?}",
        table.keys()
    );
    let problems: Vec<String> = table
        .iter()
        .filter(|(_, (_, p))| !p.is_empty())
        .map(|((v, s), (_, p))| format!("{v} {s}: {}", p.join(", ")))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(table.values().all(|(passed, _)| *passed > 0));
    Ok(())
}
