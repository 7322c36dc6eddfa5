//! `cargo xtask bench rbac-eval`: what one RBAC decision costs on the request path, for a
//! policy of 50 roles × 20 grants and a user holding 5 of them, against a trivial baseline
//! (one hash-set lookup of the tool name) measured in the same run.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use mcpgate_rbac::{Action, Effect, GrantSpec, Item, Policy, Request, RoleSpec, Subject};

use crate::stats::{self, Table, ratio};

const ROLES: usize = 50;
const GRANTS: usize = 20;
const REQUESTS: usize = 1024;

pub fn run(short: bool) -> anyhow::Result<()> {
    stats::print_machine("rbac-eval", short);
    let (iterations, rounds) = if short { (20_000, 1) } else { (2_000_000, 5) };
    let policy = policy()?;
    let held: Vec<String> = (0..5).map(|i| format!("role-{}", i * 10 + 3)).collect();
    let subject = Subject {
        roles: &held,
        ..Subject::default()
    };
    let grants = policy.effective_grants(&policy.effective_roles(&subject));
    let roles = policy.effective_roles(&subject);
    println!(
        "policy: {ROLES} roles × {GRANTS} grants; user holds {} roles ({} grants); {REQUESTS} \
         distinct requests cycled; each figure is the median of {rounds} interleaved rounds \
         of {iterations} calls",
        held.len(),
        grants.grants().len()
    );
    let names: Vec<(String, String)> = (0..REQUESTS)
        .map(|i| {
            // Three in four requests go to an upstream the user's roles name; the rest
            // anywhere (mostly denied after scanning every grant: the slow case).
            let role = if i % 4 == 0 {
                (i * 7) % ROLES
            } else {
                (i % 5) * 10 + 3
            };
            (format!("up-{role}"), tool_name(i))
        })
        .collect();
    let requests: Vec<Request<'_>> = names
        .iter()
        .map(|(u, t)| Request::new(Action::ToolsCall, u, Some(t)))
        .collect();
    let allowed = requests.iter().filter(|r| grants.is_allowed(r)).count();
    println!(
        "of the requests, {allowed} are allowed, {} denied",
        REQUESTS - allowed
    );
    // One filter per request's upstream, as the proxy builds one per list response.
    let filters: Vec<_> = names
        .iter()
        .map(|(u, _)| grants.list_filter(Item::Tool, u))
        .collect();
    let baseline_set: HashSet<&str> = names.iter().step_by(2).map(|(_, t)| t.as_str()).collect();

    type Op<'a> = Box<dyn Fn(usize) + 'a>;
    let ops: Vec<(&str, Op<'_>)> = vec![
        (
            "baseline: HashSet lookup of the tool name",
            Box::new(|i| {
                black_box(baseline_set.contains(black_box(names[i % REQUESTS].1.as_str())));
            }),
        ),
        (
            "EffectiveGrants::is_allowed",
            Box::new(|i| {
                black_box(grants.is_allowed(black_box(&requests[i % REQUESTS])));
            }),
        ),
        (
            "EffectiveGrants::decide (with the deciding grant)",
            Box::new(|i| {
                black_box(grants.decide(black_box(&requests[i % REQUESTS])));
            }),
        ),
        (
            "EffectiveGrants::visible (list filtering, per item)",
            Box::new(|i| {
                let (u, t) = &names[i % REQUESTS];
                black_box(grants.visible(Item::Tool, u, t));
            }),
        ),
        (
            "ListFilter::visible (filter picked once per upstream)",
            Box::new(|i| {
                let (_, t) = &names[i % REQUESTS];
                black_box(filters[i % REQUESTS].visible(black_box(t)));
            }),
        ),
        (
            "Policy::decide over a RoleSet (uncached path)",
            Box::new(|i| {
                black_box(policy.decide(&roles, black_box(&requests[i % REQUESTS])));
            }),
        ),
    ];
    let mut per_op: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    for _ in 0..rounds {
        for (k, (_, op)) in ops.iter().enumerate() {
            let started = Instant::now();
            for i in 0..iterations {
                op(i);
            }
            per_op[k].push(started.elapsed().as_nanos() as f64 / iterations as f64);
        }
    }
    let medians: Vec<f64> = per_op.iter_mut().map(|v| median(v)).collect();
    let table = Table::new(
        "One decision (tools/call), single thread",
        &["method", "ns/op", "decisions/s", "vs baseline"],
    );
    for ((name, _), ns) in ops.iter().zip(&medians) {
        table.row(&[
            (*name).into(),
            format!("{ns:.0}"),
            format!("{:.2e}", 1e9 / ns),
            ratio(*ns, medians[0]),
        ]);
    }

    // The cache-miss path: roles and flattened grants for one user.
    let n = iterations / 100 + 1;
    let started = Instant::now();
    for _ in 0..n {
        let roles = policy.effective_roles(black_box(&subject));
        black_box(policy.effective_grants(&roles));
    }
    let miss = started.elapsed().as_nanos() as f64 / n as f64;
    let table = Table::new("Per-user cache miss", &["method", "ns/op"]);
    table.row(&[
        "effective_roles + effective_grants".into(),
        format!("{miss:.0}"),
    ]);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn tool_name(i: usize) -> String {
    const VERBS: [&str; 6] = ["search", "create", "delete", "update", "list", "get"];
    format!("{}_{}_{}", VERBS[i % VERBS.len()], "item", i % 97)
}

/// Role r: allows on `up-r` and prefix/glob upstreams, target-specific allows and denies, a
/// couple of admin and list grants — the shapes a real policy mixes.
fn policy() -> anyhow::Result<Policy> {
    let roles: Vec<RoleSpec> = (0..ROLES)
        .map(|r| RoleSpec {
            name: format!("role-{r}"),
            description: String::new(),
            grants: (0..GRANTS).map(|g| grant(r, g)).collect(),
        })
        .collect();
    Policy::compile(&roles, &[], None)
        .map_err(|errors| {
            anyhow::anyhow!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .context("the benchmark policy must compile")
}

fn grant(r: usize, g: usize) -> GrantSpec {
    let (effect, action, upstream, target) = match g % 10 {
        0 => (
            Effect::Allow,
            "tools/list",
            format!("up-{r}"),
            "*".to_owned(),
        ),
        1 => (
            Effect::Allow,
            "tools/call",
            format!("up-{r}"),
            "search_*".to_owned(),
        ),
        2 => (
            Effect::Deny,
            "tools/call",
            "*".to_owned(),
            format!("delete_*_{g}"),
        ),
        3 => (
            Effect::Allow,
            "tools/*",
            format!("up-{}*", r % 5),
            "get_?tem_*".to_owned(),
        ),
        4 => (
            Effect::Allow,
            "resources/read",
            format!("up-{r}"),
            "file:///*".to_owned(),
        ),
        5 => (
            Effect::Allow,
            "prompts/get",
            "*".to_owned(),
            format!("prompt-{g}-*"),
        ),
        6 => (
            Effect::Deny,
            "tools/call",
            format!("up-{r}"),
            "*_item_9?".to_owned(),
        ),
        7 => (
            Effect::Allow,
            "tools/call",
            format!("up-{r}"),
            format!("update_item_{g}"),
        ),
        8 => (Effect::Allow, "admin:audit", "*".to_owned(), "*".to_owned()),
        _ => (
            Effect::Allow,
            "tools/call",
            format!("up-{r}"),
            "*list*".to_owned(),
        ),
    };
    GrantSpec {
        effect,
        action: action.into(),
        upstream,
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_compiles_and_decides_both_ways() -> anyhow::Result<()> {
        let policy = policy()?;
        let held = vec!["role-3".to_owned()];
        let subject = Subject {
            roles: &held,
            ..Subject::default()
        };
        let grants: mcpgate_rbac::EffectiveGrants =
            policy.effective_grants(&policy.effective_roles(&subject));
        assert!(grants.is_allowed(&Request::new(Action::ToolsCall, "up-3", Some("search_x"))));
        assert!(!grants.is_allowed(&Request::new(Action::ToolsCall, "up-3", Some("delete_x_2"))));
        Ok(())
    }
}
