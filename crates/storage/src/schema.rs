//! The diesel schema, written to match both migrations (portable column types).
//! Keep it in step with `migrations/*/`: a test applies them and queries every table.

#![allow(dead_code, reason = "tables gain Store methods as the product grows")]

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_normalized -> Text,
        display_name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    identities (id) {
        id -> Text,
        user_id -> Text,
        provider_id -> Text,
        subject -> Text,
        last_claims -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    provider_grants (id) {
        id -> Text,
        user_id -> Text,
        identity_id -> Text,
        provider_id -> Text,
        access_token -> Binary,
        refresh_token -> Nullable<Binary>,
        id_token -> Nullable<Binary>,
        expires_at -> Nullable<BigInt>,
        refresh_expires_at -> Nullable<BigInt>,
        scopes -> Text,
        version -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        dead_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    oauth_clients (client_id) {
        client_id -> Text,
        registration -> Text,
        client_name -> Text,
        redirect_uris -> Text,
        token_endpoint_auth_method -> Text,
        secret_hash -> Nullable<Binary>,
        metadata -> Text,
        created_at -> BigInt,
        refresh_after -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Binary,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        resource -> Text,
        scopes -> Text,
        family_id -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    token_families (id) {
        id -> Text,
        user_id -> Text,
        client_id -> Nullable<Text>,
        resource -> Nullable<Text>,
        scopes -> Text,
        revoked_at -> Nullable<BigInt>,
        expires_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    access_tokens (token_hash) {
        token_hash -> Binary,
        kind -> Text,
        family_id -> Nullable<Text>,
        user_id -> Text,
        client_id -> Nullable<Text>,
        resource -> Nullable<Text>,
        scopes -> Text,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        family_id -> Text,
        user_id -> Text,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        created_at -> BigInt,
        successor -> Nullable<Binary>,
    }
}

diesel::table! {
    browser_sessions (id_hash) {
        id_hash -> Binary,
        user_id -> Text,
        expires_at -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    pending_logins (state_hash) {
        state_hash -> Binary,
        provider_id -> Text,
        nonce -> Text,
        pkce_verifier -> Binary,
        authorize_request -> Text,
        browser_binding -> Binary,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id, resource) {
        user_id -> Text,
        client_id -> Text,
        resource -> Text,
        scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    upstream_secrets (upstream) {
        upstream -> Text,
        sealed -> Binary,
        updated_at -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    user_connections (user_id, upstream) {
        user_id -> Text,
        upstream -> Text,
        kind -> Text,
        sealed -> Binary,
        version -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        connected_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    upstreams (id) {
        id -> Text,
        name -> Text,
        url -> Text,
        settings -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        builtin -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_grants (id) {
        id -> Text,
        role_id -> Text,
        effect -> Text,
        action -> Text,
        upstream_pattern -> Text,
        target_pattern -> Text,
        created_at -> BigInt,
        position -> Integer,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        user_id -> Text,
        role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    team_roles (team_id, role_id) {
        team_id -> Text,
        role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_mappings (id) {
        id -> Text,
        provider_id -> Nullable<Text>,
        claim_path -> Text,
        claim_value -> Text,
        role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    policy_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        user_id -> Nullable<Text>,
        action -> Text,
        upstream -> Nullable<Text>,
        target -> Nullable<Text>,
        decision -> Text,
        detail -> Text,
    }
}

diesel::table! {
    service_clients (client_id) {
        client_id -> Text,
        user_id -> Text,
        name -> Text,
        upstreams -> Text,
        scopes -> Text,
        secret_hash -> Binary,
        previous_secret_hash -> Nullable<Binary>,
        previous_expires_at -> Nullable<BigInt>,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    personal_tokens (id) {
        id -> Text,
        token_hash -> Binary,
        user_id -> Text,
        name -> Text,
        upstreams -> Text,
        scopes -> Text,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::joinable!(identities -> users (user_id));
diesel::joinable!(service_clients -> users (user_id));
diesel::joinable!(personal_tokens -> users (user_id));
diesel::joinable!(user_connections -> users (user_id));
diesel::joinable!(provider_grants -> users (user_id));
diesel::joinable!(provider_grants -> identities (identity_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::joinable!(token_families -> users (user_id));
diesel::joinable!(access_tokens -> token_families (family_id));
diesel::joinable!(access_tokens -> users (user_id));
diesel::joinable!(refresh_tokens -> token_families (family_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(browser_sessions -> users (user_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(role_grants -> roles (role_id));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(team_roles -> teams (team_id));
diesel::joinable!(team_roles -> roles (role_id));
diesel::joinable!(role_mappings -> roles (role_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    identities,
    provider_grants,
    oauth_clients,
    authorization_codes,
    token_families,
    access_tokens,
    refresh_tokens,
    browser_sessions,
    pending_logins,
    consents,
    upstreams,
    upstream_secrets,
    user_connections,
    roles,
    role_grants,
    user_roles,
    teams,
    team_members,
    team_roles,
    role_mappings,
    policy_version,
    audit_events,
    service_clients,
    personal_tokens,
);
