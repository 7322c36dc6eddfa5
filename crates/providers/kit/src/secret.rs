//! The client secret, from `client_secret` or `client_secret_file`.

use mcpgate_core::{FieldError, ProviderSettings, SecretString};

/// Reads the configured secret. `Ok(None)` when neither is set (a public client).
pub fn client_secret(settings: &ProviderSettings) -> Result<Option<SecretString>, FieldError> {
    if let Some(secret) = &settings.client_secret {
        return Ok(Some(secret.clone()));
    }
    let Some(path) = &settings.client_secret_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| FieldError::new("client_secret_file", format!("cannot read {path}: {e}")))?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(FieldError::new("client_secret_file", "the file is empty"));
    }
    Ok(Some(SecretString::new(secret)))
}
