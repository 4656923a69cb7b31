//! Table definitions. `public.*` tables are schema-qualified; tenant tables are not, and
//! resolve through the `search_path` that [`crate::tenancy::TenantDb`] sets.

diesel::table! {
    public.tenants (id) {
        id -> BigInt,
        schema_name -> Text,
        name -> Text,
        status -> Text,
        created_at -> Timestamptz,
        suspended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    public.tenant_hosts (host) {
        host -> Text,
        tenant_id -> BigInt,
        is_primary -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(tenant_hosts -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, tenant_hosts);

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        token_hash -> Binary,
        token_prefix -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Jsonb,
        updated_at -> Timestamptz,
        updated_by -> Nullable<BigInt>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_tokens, settings);
