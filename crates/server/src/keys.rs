//! Key rotation: which keys the stored values need, and the re-seal job that moves them to the
//! active key.
//!
//! Rotating is: add a key and make it active (`mcpgate keys rotate` edits the file), restart
//! or roll the replicas; each replica's start runs [`spawn_reseal`], which walks the sealed
//! values in small batches and re-seals those under an older key. The walk is idempotent, so
//! it resumes by starting over (values already moved are skipped), and two replicas running it
//! at once only do some work twice: each write happens only if the row is unchanged since it
//! was read. When `mcpgate keys status` shows no stored value under the old key, it can be
//! removed from the ring — after also waiting out what clients hold sealed with it (MCP
//! session ids, consent and sign-in cookies; those clients then start a new session).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mcpgate_crypto::{Place, SecretBox};
use mcpgate_storage::{SealedTable, StorageError, Store};

/// Rows read per batch.
pub const BATCH: i64 = 100;
/// Pause between batches, so a large table never takes the database from requests.
pub const PAUSE: Duration = Duration::from_millis(100);

/// Stored sealed values per key id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyCounts {
    /// key id → (long-lived values, short-lived values that expire on their own)
    pub per_key: BTreeMap<String, (u64, u64)>,
    /// Values whose envelope cannot be read (never written by mcpgate).
    pub malformed: u64,
}

/// What one walk did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResealReport {
    /// Sealed values looked at.
    pub scanned: u64,
    /// Moved to the active key.
    pub resealed: u64,
    /// Rows that changed while being re-sealed (their new values are sealed with the active
    /// key already).
    pub changed: u64,
    /// Values that do not open: their key is gone from the ring, or they were tampered with.
    pub failed: u64,
}

/// Counts the stored sealed values by the key that sealed them.
pub async fn count(store: &Store) -> Result<KeyCounts, StorageError> {
    let mut counts = KeyCounts::default();
    for table in SealedTable::ALL {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .sealed_values_page(table, after.as_deref(), BATCH * 10)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.row.clone());
            for row in &page {
                for (_, value) in &row.values {
                    match SecretBox::key_id_of(value) {
                        Ok(id) => {
                            let entry = counts.per_key.entry(id.to_owned()).or_default();
                            if table.long_lived() {
                                entry.0 += 1;
                            } else {
                                entry.1 += 1;
                            }
                        }
                        Err(_) => counts.malformed += 1,
                    }
                }
            }
        }
    }
    Ok(counts)
}

/// Re-seals every long-lived value under an older key, `batch` rows at a time with `pause`
/// between batches; `progress` hears the running totals after each batch.
pub async fn reseal(
    store: &Store,
    ring: &SecretBox,
    batch: i64,
    pause: Duration,
    mut progress: impl FnMut(SealedTable, &ResealReport),
) -> Result<ResealReport, StorageError> {
    let mut report = ResealReport::default();
    for table in SealedTable::ALL.into_iter().filter(|t| t.long_lived()) {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .sealed_values_page(table, after.as_deref(), batch)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.row.clone());
            for row in &page {
                report.scanned += row.values.len() as u64;
                let mut moved = Vec::with_capacity(row.values.len());
                let mut any = false;
                let mut broken = false;
                for (column, value) in &row.values {
                    match ring.reseal(value, &Place::new(table.name(), column, &row.row)) {
                        Ok(Some(new)) => {
                            any = true;
                            moved.push((*column, new));
                        }
                        Ok(None) => moved.push((*column, value.clone())),
                        Err(e) => {
                            tracing::warn!(table = table.name(), column, row = %row.row, error = %e, "a sealed value does not open; left as it is");
                            report.failed += 1;
                            broken = true;
                        }
                    }
                }
                if !any || broken {
                    continue;
                }
                let count = moved.len() as u64;
                if store.replace_sealed(table, row, &moved).await? {
                    report.resealed += count;
                    metrics::counter!("mcpgate_keys_resealed_total").increment(count);
                } else {
                    report.changed += 1;
                }
            }
            progress(table, &report);
            tokio::time::sleep(pause).await;
        }
    }
    Ok(report)
}

/// Runs [`reseal`] in the background once, logging progress; a database error is retried
/// after a minute (the walk resumes from the start, skipping what was moved).
pub fn spawn_reseal(store: Store, ring: Arc<SecretBox>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let active = ring.active_key_id().to_owned();
            let result = reseal(&store, &ring, BATCH, PAUSE, |table, so_far| {
                if so_far.resealed > 0 {
                    tracing::info!(
                        table = table.name(),
                        scanned = so_far.scanned,
                        resealed = so_far.resealed,
                        "re-sealing stored secrets under key {active}"
                    );
                }
            })
            .await;
            match result {
                Ok(report) => {
                    if report.resealed > 0 || report.failed > 0 {
                        tracing::info!(
                            scanned = report.scanned,
                            resealed = report.resealed,
                            changed = report.changed,
                            failed = report.failed,
                            "stored secrets re-sealed under the active key"
                        );
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "re-sealing paused; retrying in a minute");
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        }
    })
}

/// Adds key `id` to the configuration file's ring and makes it active, keeping the file's
/// comments and layout; the file is replaced atomically with its permissions. Returns the key
/// that was active before.
pub fn rotate_file(path: &std::path::Path, id: &str, key: &str) -> anyhow::Result<Option<String>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path).context("cannot read the file")?;
    let mut doc: toml_edit::DocumentMut = text.parse().context("not valid TOML")?;
    let encryption = doc
        .entry("encryption")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .context("`encryption` is not a table")?;
    let previous = encryption
        .get("active_key")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let keys = encryption
        .entry("keys")
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .context("`encryption.keys` is not a table")?;
    anyhow::ensure!(keys.get(id).is_none(), "key id {id} exists already");
    keys.insert(id, toml_edit::value(key));
    // Replace the value only, so the key's comments stay with it.
    match encryption
        .get_mut("active_key")
        .and_then(|i| i.as_value_mut())
    {
        Some(value) => {
            let decor = value.decor().clone();
            *value = id.into();
            *value.decor_mut() = decor;
        }
        None => {
            encryption.insert("active_key", toml_edit::value(id));
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temp = dir.join(format!(
        ".{}.rotate",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("mcpgate.toml")
    ));
    std::fs::write(&temp, doc.to_string()).context("cannot write next to the file")?;
    let permissions = std::fs::metadata(path)?.permissions();
    std::fs::set_permissions(&temp, permissions)?;
    std::fs::rename(&temp, path).context("cannot replace the file")?;
    Ok(previous)
}

/// `mcpgate keys status`: each key of the ring and of the stored values, what it still seals,
/// and whether it may go.
pub fn render_status(config: &crate::config::Config, counts: &KeyCounts) -> String {
    use std::fmt::Write as _;
    let active = config.encryption.active_key.as_deref().unwrap_or_default();
    let mut ids: std::collections::BTreeSet<&str> =
        config.encryption.keys.keys().map(String::as_str).collect();
    ids.extend(counts.per_key.keys().map(String::as_str));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12}  {:>10}  {:>11}  STATE",
        "KEY", "LONG-LIVED", "SHORT-LIVED"
    );
    for id in ids {
        let (long, short) = counts.per_key.get(id).copied().unwrap_or_default();
        let in_ring = config.encryption.keys.contains_key(id);
        let state = if id == active {
            "active"
        } else if !in_ring {
            "MISSING from the ring: these values no longer open"
        } else if long > 0 {
            "still needed: re-sealing has not finished (`mcpgate keys reseal`)"
        } else if short > 0 {
            "still needed for a few minutes (short-lived values expire)"
        } else {
            "seals nothing stored: may be removed (clients' sessions sealed with it end)"
        };
        let _ = writeln!(out, "{id:<12}  {long:>10}  {short:>11}  {state}");
    }
    if counts.malformed > 0 {
        let _ = writeln!(
            out,
            "{} stored value(s) are not sealed values",
            counts.malformed
        );
    }
    out
}
