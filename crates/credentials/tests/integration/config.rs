//! Config parsing and validation: every problem reported at once, with its path.

use mcpgate_credentials::{CredentialsConfig, UpstreamCredentialsConfig};

use super::parse;

fn messages(config: &UpstreamCredentialsConfig, path: &str) -> Vec<String> {
    config
        .validate(path)
        .into_iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect()
}

#[test]
fn one_table_and_a_list_both_parse() {
    let one = parse(
        r#"credentials = { kind = "static", header = "x-api-key", value_env = "CARGO_PKG_NAME" }"#,
    );
    assert_eq!(one.entries().count(), 1);
    assert!(matches!(
        one.entries().next(),
        Some(CredentialsConfig::Static(_))
    ));
    assert!(one.validate("upstreams[0].credentials").is_empty());

    let many = parse(
        r#"
        [[credentials]]
        kind = "identity_assertion"
        [[credentials]]
        kind = "aws_sigv4"
        service = "execute-api"
        region = "eu-west-1"
        credentials = { source = "env" }
        "#,
    );
    let kinds: Vec<&str> = many.entries().map(CredentialsConfig::kind).collect();
    assert_eq!(kinds, ["identity_assertion", "aws_sigv4"]);
    assert_eq!(
        messages(&many, "upstreams[0].credentials"),
        Vec::<String>::new()
    );
    assert_eq!(UpstreamCredentialsConfig::default().entries().count(), 1);
}

#[test]
fn every_problem_is_reported_together_with_its_path() {
    let config = parse(
        r#"
        [[credentials]]
        kind = "static"
        header = "x-api-key"
        value_file = "/nonexistent/mcpgate-test/api-key"
        [[credentials]]
        kind = "kerberos"
        [[credentials]]
        kind = "aws_sigv4"
        service = "lambda"
        credentials = { source = "env" }
        "#,
    );
    let problems = messages(&config, "upstreams[0].credentials");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("upstreams[0].credentials[0].value_file: cannot read"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("upstreams[0].credentials[1]: unknown variant `kerberos`"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("upstreams[0].credentials[2].region:"),
        "{problems:#?}"
    );
}

#[test]
fn unknown_keys_and_bad_combinations_are_errors() {
    let typo =
        parse(r#"credentials = { kind = "login_token", provider = "github", scopes = "x" }"#);
    let problems = messages(&typo, "u");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("unknown field `scopes`"),
        "{problems:#?}"
    );

    let clash = parse(
        r#"
        [[credentials]]
        kind = "login_token"
        provider = "github"
        [[credentials]]
        kind = "none"
        [[credentials]]
        kind = "static"
        value_env = "CARGO_PKG_NAME"
        "#,
    );
    let problems = messages(&clash, "u");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("u[1]: kind = \"none\" cannot be combined")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("u[2]: sets header \"authorization\", already set by u[0]")),
        "{problems:#?}"
    );

    let ttl = parse(r#"credentials = { kind = "identity_assertion", ttl_secs = 300 }"#);
    assert_eq!(messages(&ttl, "u"), ["u.ttl_secs: must be 1 to 60 seconds"]);

    let cc = parse(
        r#"credentials = { kind = "client_credentials", token_endpoint = "http://as.example/token", client_id = "c" }"#,
    );
    let problems = messages(&cc, "u");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("u.token_endpoint: must be https")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("u: set exactly one of client_secret")),
        "{problems:#?}"
    );
}

#[test]
fn debug_and_serialized_config_never_show_a_secret() {
    let config = parse(
        r#"credentials = { kind = "client_credentials", token_endpoint = "https://as.example/token", client_id = "c", client_secret = "inline-secret-value" }"#,
    );
    assert!(config.validate("u").is_empty());
    let debug = format!("{config:?}");
    let shown = serde_json::to_string(&config).unwrap_or_default();
    for text in [&debug, &shown] {
        assert!(!text.contains("inline-secret-value"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
