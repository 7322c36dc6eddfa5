//! The block `cargo xtask dev` prints once on start. The README's "Try it" section shows it
//! verbatim; a test below keeps the two the same.

use crate::mcp_software::PYTHON_SDK_PIN;

pub struct Banner<'a> {
    /// The gateway's base URL, no trailing slash.
    pub base_url: &'a str,
    pub admin_email: &'a str,
    /// `Some` only on the run that generated it: shown once, never again.
    pub new_password: Option<&'a str>,
    /// The dev folder as the person should type it (`.dev` from the workspace root).
    pub dir: &'a str,
    /// Whether the demo upstream runs (else the person brings their own upstreams).
    pub demo: bool,
}

impl Banner<'_> {
    pub fn render(&self) -> String {
        let Banner {
            base_url,
            admin_email,
            dir,
            ..
        } = self;
        let password = match self.new_password {
            Some(p) => format!("{p}   (shown this once; kept in {dir}/admin-password)"),
            None => format!("in {dir}/admin-password"),
        };
        let mut out = format!(
            "mcpgate is running (dev)\n\n\
             \x20 Gateway       {base_url}\n\
             \x20 Sign in       {admin_email}\n\
             \x20 Password      {password}\n"
        );
        if !self.demo {
            out.push_str(&format!(
                "  MCP endpoints {base_url}/mcp/NAME for each [[upstreams]] in {dir}/mcpgate.toml\n\n\
                 Ctrl-C stops mcpgate.\n"
            ));
            return out;
        }
        let endpoint = format!("{base_url}/mcp/demo");
        out.push_str(&format!(
            "  MCP endpoint  {endpoint}   (demo server: tools echo, slow, headers)\n\n\
             Connect a client; each opens the sign-in page in your browser.\n\n\
             \x20 Python (mcp SDK): sign in, then call the echo tool\n\
             \x20   python3 -m venv {dir}/venv && {dir}/venv/bin/pip install -q \"{PYTHON_SDK_PIN}\"\n\
             \x20   {dir}/venv/bin/python examples/python/connect.py {endpoint}\n\n\
             \x20 MCP Inspector (Node 22.19 or newer; its page at http://localhost:6274 is an allowed origin)\n\
             \x20   npx -y @modelcontextprotocol/inspector --transport http --server-url {endpoint}\n\n\
             \x20 Clients configured by a JSON file (mcpServers)\n\
             \x20   {{\"mcpServers\": {{\"mcpgate-demo\": {{\"type\": \"http\", \"url\": \"{endpoint}\"}}}}}}\n\n\
             Ctrl-C stops mcpgate and the demo server.\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the README shows: a first run from the workspace root on the default port.
    fn readme_banner() -> String {
        Banner {
            base_url: "http://127.0.0.1:8080",
            admin_email: crate::dev::config::ADMIN_EMAIL,
            new_password: Some("<generated>"),
            dir: ".dev",
            demo: true,
        }
        .render()
    }

    #[test]
    fn the_readme_shows_exactly_what_dev_prints() {
        let readme = std::fs::read_to_string(crate::util::root().join("README.md")).unwrap();
        let banner = readme_banner();
        assert!(
            readme.contains(&banner),
            "README.md's \"Try it\" block differs from what `cargo xtask dev` prints:\n{banner}"
        );
    }

    #[test]
    fn a_later_run_does_not_print_the_password() {
        let later = Banner {
            new_password: None,
            ..Banner {
                base_url: "http://127.0.0.1:8080",
                admin_email: "a@example.com",
                new_password: Some("secret-password"),
                dir: ".dev",
                demo: true,
            }
        }
        .render();
        assert!(!later.contains("secret-password"));
        assert!(later.contains("in .dev/admin-password"));
    }

    #[test]
    fn without_the_demo_no_demo_endpoint_is_printed() {
        let text = Banner {
            base_url: "http://127.0.0.1:8080",
            admin_email: "a@example.com",
            new_password: None,
            dir: ".dev",
            demo: false,
        }
        .render();
        assert!(!text.contains("/mcp/demo"), "{text}");
        assert!(text.contains("[[upstreams]]"), "{text}");
    }
}
