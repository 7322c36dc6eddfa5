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

    let orphan = parse(
        r#"credentials = { kind = "token_exchange", token_endpoint = "https://sts.example/token", subject_token = "identity_assertion", client_secret = "x" }"#,
    );
    assert_eq!(
        messages(&orphan, "u"),
        ["u.client_id: a client secret is set without the client_id it belongs to"]
    );

    let role = parse(
        r#"
        [credentials]
        kind = "aws_sigv4"
        service = "lambda"
        region = "eu-west-1"
        [credentials.credentials]
        source = "assume_role"
        role_arn = "mcp-role"
        duration_secs = 60
        base = { source = "static", access_key_id = "AKID" }
        "#,
    );
    assert_eq!(
        messages(&role, "u"),
        [
            "u.credentials.role_arn: must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            "u.credentials.duration_secs: must be 900 to 43200 seconds",
            "u.credentials.base: set exactly one of secret_access_key, secret_access_key_file or secret_access_key_env",
        ]
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

#[test]
fn the_example_config_parses_and_only_lacks_its_secrets() {
    #[derive(serde::Deserialize)]
    struct Upstream {
        name: String,
        credentials: UpstreamCredentialsConfig,
    }
    #[derive(serde::Deserialize)]
    struct Example {
        upstreams: Vec<Upstream>,
    }
    let text = include_str!("../../credentials.example.toml");
    let example: Example = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = example
        .upstreams
        .iter()
        .flat_map(|u| u.credentials.entries().map(CredentialsConfig::kind))
        .collect();
    assert_eq!(
        kinds,
        [
            "none",
            "static",
            "login_token",
            "client_credentials",
            "token_exchange",
            "identity_assertion",
            "aws_sigv4",
            "user_oauth",
            "user_secret"
        ]
    );
    let mut problems = Vec::new();
    for (i, u) in example.upstreams.iter().enumerate() {
        assert!(!u.name.is_empty());
        problems.extend(messages(
            &u.credentials,
            &format!("upstreams[{i}].credentials"),
        ));
    }
    // The secrets live in files and variables this machine does not have.
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with(
            "upstreams[1].credentials.value_env: environment variable UPSTREAM_API_KEY"
        ),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("upstreams[3].credentials.client_secret_file: cannot read"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with(
            "upstreams[4].credentials.client_secret_env: environment variable ORDERS_STS_SECRET"
        ),
        "{problems:#?}"
    );
}
