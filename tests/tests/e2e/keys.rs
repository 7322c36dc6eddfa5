//! Key rotation on both backends: values sealed under an old key move to the new one in
//! batches, a row refreshed meanwhile is left to its refresher, a value that does not open is
//! reported and kept, and afterwards the old key can go. `keys rotate` edits the file.

use std::time::Duration;

use mcpgate_crypto::{Place, SecretBox};
use mcpgate_server::keys;
use mcpgate_storage::{GrantTokens, NewUser, SealedTable, Store};
use mcpgate_tests::TestDb;
use zeroize::Zeroizing;

fn ring(active: &str, ids: &[&str]) -> SecretBox {
    SecretBox::new(
        active,
        ids.iter().map(|id| {
            let byte = id.as_bytes()[0];
            ((*id).to_owned(), Zeroizing::new([byte; 32]))
        }),
    )
    .expect("ring")
}

const GRANTS: usize = 230;

async fn seed(store: &Store, old: &SecretBox) -> anyhow::Result<Vec<String>> {
    let user = store
        .create_user(&NewUser {
            email: "ada@example.com".into(),
            display_name: None,
            password_hash: None,
            is_admin: false,
        })
        .await?;
    let identity = store
        .create_identity(&user.id, "corp", "ada", &serde_json::json!({}))
        .await?;
    let mut ids = Vec::new();
    for i in 0..GRANTS {
        let id = format!("grant-{i:04}");
        let seal = |column: &str, value: &str| {
            old.seal(
                value.as_bytes(),
                &Place::new("provider_grants", column, &id),
            )
        };
        let tokens = GrantTokens {
            access_token: seal("access_token", &format!("at-{i}"))?,
            refresh_token: Some(seal("refresh_token", &format!("rt-{i}"))?),
            id_token: None,
            scopes: "openid".into(),
            ..Default::default()
        };
        store
            .create_grant(&id, &user.id, &identity.id, "corp", &tokens)
            .await?;
        ids.push(id);
    }
    // Connected accounts, one per upstream.
    for upstream in ["drive", "jira"] {
        let row = format!("{}/{upstream}", user.id);
        let sealed = old.seal(
            format!("token-{upstream}").as_bytes(),
            &Place::new("user_connections", "sealed", &row),
        )?;
        store
            .put_user_connection(&user.id, upstream, "user_oauth", &sealed)
            .await?;
    }
    let secret = old.seal(
        b"api-key",
        &Place::new("upstream_secrets", "sealed", "demo"),
    )?;
    store.put_upstream_secret("demo", &secret, "admin").await?;
    // Sealed for another place: it does not open here, whatever the key.
    let foreign = old.seal(b"x", &Place::new("upstream_secrets", "sealed", "other"))?;
    store.put_upstream_secret("zzz", &foreign, "admin").await?;
    Ok(ids)
}

async fn rotation(db: TestDb) -> anyhow::Result<()> {
    let store = db.store().await?;
    store.migrate().await?;
    let old = ring("a", &["a"]);
    let ids = seed(&store, &old).await?;
    let long_lived = (GRANTS * 2 + 2 + 2) as u64;
    let counts = keys::count(&store).await?;
    assert_eq!(
        counts.per_key.get("a"),
        Some(&(long_lived, 0)),
        "{counts:?}"
    );

    let both = ring("b", &["a", "b"]);
    // A grant refreshed between the walk's read and its write is not overwritten.
    let page = store
        .sealed_values_page(SealedTable::ProviderGrants, None, 1)
        .await?;
    let lease = store
        .claim_refresh_lease(&ids[0], "replica-2", 1, Duration::from_secs(30))
        .await?;
    assert!(matches!(lease, mcpgate_storage::LeaseClaim::Claimed { .. }));
    let refreshed = GrantTokens {
        access_token: both.seal(
            b"at-new",
            &Place::new("provider_grants", "access_token", &ids[0]),
        )?,
        scopes: "openid".into(),
        ..Default::default()
    };
    store
        .complete_refresh(&ids[0], "replica-2", 1, &refreshed)
        .await?;
    let stale = vec![(
        "access_token",
        both.seal(
            b"at-0",
            &Place::new("provider_grants", "access_token", &ids[0]),
        )?,
    )];
    assert!(
        !store
            .replace_sealed(SealedTable::ProviderGrants, &page[0], &stale)
            .await?,
        "a refreshed grant was overwritten with stale tokens"
    );

    let mut batches = 0;
    let report = keys::reseal(&store, &both, 100, Duration::ZERO, |_, _| batches += 1).await?;
    // Grant 0 holds one value (access token, under b already); the foreign secret fails.
    assert_eq!(report.resealed, long_lived - 2 - 1, "{report:?}");
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(batches >= 3, "{batches} batches for {GRANTS} grants of 100");
    let counts = keys::count(&store).await?;
    assert_eq!(
        counts.per_key.get("a"),
        Some(&(1, 0)),
        "only the foreign value: {counts:?}"
    );

    // Without key a, every moved value still opens, to what it was.
    let new_only = ring("b", &["b"]);
    let grant = store.get_grant(&ids[7]).await?;
    let at = new_only.open(
        &grant.access_token,
        &Place::new("provider_grants", "access_token", &ids[7]),
    )?;
    assert_eq!(at.as_slice(), b"at-7");
    let rt = new_only.open(
        grant.refresh_token.as_deref().unwrap_or_default(),
        &Place::new("provider_grants", "refresh_token", &ids[7]),
    )?;
    assert_eq!(rt.as_slice(), b"rt-7");
    assert_eq!(
        store.get_grant(&ids[0]).await?.version,
        2,
        "the refresh stands"
    );
    let opened = new_only.open(
        &store.get_grant(&ids[0]).await?.access_token,
        &Place::new("provider_grants", "access_token", &ids[0]),
    )?;
    assert_eq!(opened.as_slice(), b"at-new");
    let secret = store.upstream_secret("demo").await?.expect("secret");
    assert_eq!(
        new_only
            .open(
                &secret.sealed,
                &Place::new("upstream_secrets", "sealed", "demo")
            )?
            .as_slice(),
        b"api-key"
    );
    let user_id = store.get_grant(&ids[0]).await?.user_id;
    let connection = store
        .connected_account(&user_id, "jira")
        .await?
        .expect("connection");
    let row = format!("{user_id}/jira");
    let opened = new_only.open(
        &connection.sealed,
        &Place::new("user_connections", "sealed", &row),
    )?;
    assert_eq!(opened.as_slice(), b"token-jira");
    // A second walk finds nothing left to move (resumable: it starts over and skips).
    let again = keys::reseal(&store, &both, 100, Duration::ZERO, |_, _| {}).await?;
    assert_eq!((again.resealed, again.failed), (0, 1), "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_moves_every_stored_secret_on_sqlite() -> anyhow::Result<()> {
    rotation(TestDb::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_moves_every_stored_secret_on_postgres() -> anyhow::Result<()> {
    match TestDb::postgres("keys_rotation").await? {
        Some(db) => rotation(db).await,
        None => Ok(()),
    }
}

#[test]
fn rotate_edits_the_file_and_keeps_its_comments_and_mode() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("mcpgate.toml");
    let old_key = mcpgate_crypto::keys::generate_key_b64()?;
    std::fs::write(
        &path,
        format!(
            "# the gateway\nlisten = \"127.0.0.1:9000\"\n\n[encryption]\n# rotated yearly\nactive_key = \"k1\"\n\n[encryption.keys]\nk1 = \"{old_key}\"\n"
        ),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let new_key = mcpgate_crypto::keys::generate_key_b64()?;
    let previous = keys::rotate_file(&path, "k2", &new_key)?;
    assert_eq!(previous.as_deref(), Some("k1"));
    let text = std::fs::read_to_string(&path)?;
    assert!(
        text.contains("# the gateway") && text.contains("# rotated yearly"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    let config =
        mcpgate_server::config::Config::load(Some(&path)).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(config.encryption.active_key.as_deref(), Some("k2"));
    assert!(config.encryption.keys.contains_key("k1") && config.encryption.keys.contains_key("k2"));
    // The same id twice is refused, and the file is left alone.
    assert!(keys::rotate_file(&path, "k2", &new_key).is_err());
    assert_eq!(std::fs::read_to_string(&path)?, text);
    Ok(())
}
