use super::*;

const EVIL: &str = "<script>alert(\"x\")</script>";

fn chrome(is_admin: bool) -> Chrome {
    Chrome {
        nav: Nav::new(is_admin, "/", "tok".into()),
        flash: None,
        error: None,
    }
}

fn home(name: &str) -> HomeView {
    HomeView {
        chrome: chrome(false),
        name: name.into(),
        email: "ada@example.com".into(),
        csrf: "t\"ok".into(),
        endpoints: vec![Endpoint {
            name: "github".into(),
            url: "http://127.0.0.1:8080/mcp/github".into(),
        }],
        consents: vec![ConsentRow {
            client_id: "c1".into(),
            client_name: EVIL.into(),
            scopes: "mcp".into(),
            granted_at: "2026-12-08 10:00".into(),
        }],
        sessions: vec![SessionRow {
            id: "abc".into(),
            created_at: "2026-12-08 10:00".into(),
            expires_at: "2026-12-09 10:00".into(),
            current: true,
        }],
        local_account: true,
    }
}

#[test]
fn a_script_in_a_user_name_is_shown_as_text() {
    let html = home(EVIL).render().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("as &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "{html}"
    );
    // Attributes too: a quote cannot end the value.
    assert!(html.contains("value=\"t&quot;ok\""), "{html}");
    // The trusted parts are markup.
    assert!(html.contains("<style>:root{"), "{html}");
    assert!(html.contains("<svg width=\"26\""), "{html}");
}

#[test]
fn escapes_everything_that_could_break_out() {
    assert_eq!(
        escape("<script>\"x\" & 'y'</script>"),
        "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
    );
}

#[test]
fn the_sign_in_page_escapes_and_links_providers_with_the_return_path() {
    let html = LoginView {
        providers: vec![Provider {
            id: "acme".into(),
            name: EVIL.into(),
        }],
        error: Some("Invalid email or password.".into()),
        email: "\"><img src=x>".into(),
        csrf: "c".into(),
        return_to: "/oauth/authorize?a=1&b=2".into(),
    }
    .render()
    .unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        // `/` stays; `?`, `=` and `&` of the path are encoded.
        html.contains("href=\"/login/acme?return_to=/oauth/authorize%3Fa%3D1%26b%3D2\""),
        "{html}"
    );
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert!(html.contains("<title>Sign in · mcpgate</title>"), "{html}");
}

#[test]
fn every_template_renders() {
    let admin = chrome(true);
    let pages = [
        MessageView::new(Some(404), "Not found", EVIL).render(),
        ConsentView {
            client_name: EVIL.into(),
            registration: "dcr".into(),
            client_host: String::new(),
            who_label: "Signed in as".into(),
            who: "ada@example.com".into(),
            federating: false,
            resource: "http://x/mcp/demo".into(),
            redirect_host: "127.0.0.1".into(),
            scopes: vec![ScopeLine {
                text: "use tools".into(),
                scope: "mcp".into(),
            }],
            notice: None,
            loopback: true,
            action: "/oauth/authorize".into(),
            fields: vec![HiddenField {
                name: "state".into(),
                value: EVIL.into(),
            }],
        }
        .render(),
        UsersView {
            chrome: admin.clone(),
            csrf: "c".into(),
            query: EVIL.into(),
            users: vec![UserRow {
                id: "u1".into(),
                email: "ada@example.com".into(),
                display_name: Some(EVIL.into()),
                is_admin: false,
                disabled: true,
            }],
            next_after: Some("ada@example.com".into()),
        }
        .render(),
        RolesView {
            chrome: admin.clone(),
            csrf: "c".into(),
            roles: vec![RoleRow {
                name: "dev".into(),
                description: EVIL.into(),
                source: "database".into(),
                grants: vec![GrantRow {
                    effect: "deny".into(),
                    action: "tools/call".into(),
                    upstream: "github".into(),
                    target: Some("delete_repo".into()),
                }],
            }],
        }
        .render(),
        TeamsView {
            chrome: admin.clone(),
            csrf: "c".into(),
            teams: vec![TeamRow {
                name: "core".into(),
                members: vec![EVIL.into()],
                roles: vec!["dev".into()],
            }],
            roles: vec!["dev".into()],
            mappings: vec![MappingRow {
                id: Some("m1".into()),
                provider: None,
                claim: "groups".into(),
                value: EVIL.into(),
                role: "dev".into(),
                source: "database".into(),
            }],
        }
        .render(),
        UpstreamsView {
            chrome: admin.clone(),
            upstreams: vec![UpstreamRow {
                name: "github".into(),
                endpoint: "http://x/mcp/github".into(),
                url: "http://up".into(),
                credential: "none".into(),
                reachable: Some(false),
                last_error: Some(EVIL.into()),
            }],
        }
        .render(),
        ClientsView {
            chrome: admin.clone(),
            csrf: "c".into(),
            clients: vec![ClientRow {
                client_id: "c1".into(),
                name: EVIL.into(),
                registration: "dcr".into(),
                redirect_uris: vec!["http://127.0.0.1/cb".into()],
                created_at: "2026-12-08 10:00".into(),
            }],
            next_after: None,
        }
        .render(),
        AuditView {
            chrome: admin.clone(),
            filters: AuditFilters {
                decision: "deny".into(),
                ..Default::default()
            },
            events: vec![AuditRow {
                at: "2026-12-08 10:00:00".into(),
                user: Some(EVIL.into()),
                action: "tools/call".into(),
                upstream: Some("github".into()),
                target: Some("delete_repo".into()),
                decision: "deny".into(),
                detail: "{}".into(),
            }],
            export_query: "decision=deny".into(),
            next_query: Some("decision=deny&before=x".into()),
        }
        .render(),
        ExplainView {
            chrome: admin,
            form: ExplainForm::default(),
            result: Some(ExplainResult {
                user: EVIL.into(),
                disabled: false,
                roles: vec![HeldRoleRow {
                    name: "dev".into(),
                    because: vec!["directly".into()],
                }],
                unknown_roles: vec![],
                decision: Some(DecisionRow {
                    allowed: false,
                    explanation: "denied by role `dev` grant #0".into(),
                }),
            }),
        }
        .render(),
    ];
    let pages = pages.into_iter().chain([DashboardView {
        chrome: chrome(true),
        interval_secs: 10,
        window: "10 minutes".into(),
        plots: vec![
            Plot::new("Requests", "per second", &[0.0, 2.0, 1.0], 1),
            Plot::new(EVIL, "per second", &[], 1),
        ],
    }
    .render()]);
    for page in pages {
        let html = page.unwrap();
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("</footer>"), "{html}");
    }
}

#[test]
fn a_plot_scales_its_points_into_the_box() {
    let p = Plot::new("t", "u", &[0.0, 5.0, 10.0], 0);
    assert_eq!(p.points, "0.0,78.0 150.0,41.0 300.0,4.0");
    assert_eq!(p.latest, "10");
    assert_eq!(p.peak.as_deref(), Some("10"));
    assert_eq!(Plot::new("t", "u", &[f64::NAN], 0).points, "300.0,78.0");
}

#[test]
fn administrators_see_the_admin_links_and_others_do_not() {
    let admin = serde_json::to_string(&Nav::new(true, "/", String::new())).unwrap();
    let user = serde_json::to_string(&Nav::new(false, "/", String::new())).unwrap();
    assert!(admin.contains("/admin/audit"));
    assert!(!user.contains("/admin/"));
}
