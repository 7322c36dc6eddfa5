//! `mcpgate doctor` against real parts: a fresh database (migrations pending), the key ring,
//! the certified OIDC server as a provider, a running upstream, and one that is down.

use mcpgate_core::{ProviderSettings, SecretString};
use mcpgate_fixture_oidc_provider::{CLIENT_SECRET, Realm, RealmOptions};
use mcpgate_server::doctor::{self, Status};
use mcpgate_tests::fixtures::{FixtureUpstream, free_port};
use mcpgate_tests::{TestDb, test_config};
use serde_json::json;

use crate::proxy::upstream_config;

fn row<'a>(checks: &'a [doctor::Check], name: &str) -> &'a doctor::Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} row in {checks:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_failure_with_a_fix_and_passes_once_fixed() -> anyhow::Result<()> {
    let Some(realm) = Realm::start("doctor", RealmOptions::default()).await? else {
        return Ok(());
    };
    let db = TestDb::sqlite()?;
    let upstream = FixtureUpstream::start().await?;
    let down = format!("http://127.0.0.1:{}/mcp", free_port()?);
    let mut config = test_config(db.url());
    config.database.migrate_on_start = false;
    config.upstreams = vec![
        upstream_config("demo", &upstream.url),
        upstream_config("gone", &down),
    ];
    config.providers = vec![ProviderSettings {
        id: "corp".into(),
        kind: "keycloak".into(),
        client_id: "mcpgate".into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        options: json!({ "server_url": realm.server_url, "realm": "test" })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    }];

    let checks = doctor::run(&config).await;
    let table = doctor::render(&checks);
    assert!(doctor::failed(&checks), "{table}");
    assert_eq!(row(&checks, "database").status, Status::Ok, "{table}");
    // A fresh database with migrate_on_start off: pending migrations fail, with the command.
    let migrations = row(&checks, "migrations");
    assert_eq!(migrations.status, Status::Fail, "{table}");
    assert!(migrations.fix.contains("mcpgate migrate"), "{table}");
    assert_eq!(row(&checks, "key ring").status, Status::Ok, "{table}");
    let provider = row(&checks, "provider corp");
    assert_eq!(provider.status, Status::Ok, "{table}");
    assert!(provider.detail.contains(&realm.server_url), "{table}");
    let demo = row(&checks, "upstream demo");
    assert_eq!(demo.status, Status::Ok, "{table}");
    assert!(demo.detail.contains("credentials: none"), "{table}");
    let gone = row(&checks, "upstream gone");
    assert_eq!(gone.status, Status::Fail, "{table}");
    assert!(gone.detail.contains(&down), "{table}");
    assert!(gone.fix.contains("start the upstream"), "{table}");
    // The realm and the fixture answer with a Date header: the clock is measured.
    assert_eq!(row(&checks, "clock").status, Status::Ok, "{table}");
    assert!(table.contains("fix: run `mcpgate migrate`"), "{table}");

    // Fixed: migrated, the dead upstream removed → no failure.
    db.store().await?.migrate().await?;
    config.upstreams.truncate(1);
    let checks = doctor::run(&config).await;
    let table = doctor::render(&checks);
    assert!(!doctor::failed(&checks), "{table}");
    assert_eq!(row(&checks, "migrations").detail, "up to date", "{table}");

    // A wrong key ring and an unreachable provider are failures too.
    config.encryption.active_key = Some("missing".into());
    config.providers[0].options = json!({ "server_url": down, "realm": "test" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let checks = doctor::run(&config).await;
    let table = doctor::render(&checks);
    assert_eq!(row(&checks, "key ring").status, Status::Fail, "{table}");
    assert_eq!(
        row(&checks, "provider corp").status,
        Status::Fail,
        "{table}"
    );
    Ok(())
}

#[test]
fn configuration_problems_are_rows_too() {
    let errors = vec![mcpgate_server::config::ConfigError {
        path: "upstreams[0].url".into(),
        message: "not a URL".into(),
    }];
    let checks = doctor::config_failures(&errors);
    let table = doctor::render(&checks);
    assert!(doctor::failed(&checks));
    assert!(table.contains("upstreams[0].url: not a URL"), "{table}");
    assert!(table.contains("fix: correct `upstreams[0].url`"), "{table}");
}
