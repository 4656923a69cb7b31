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

diesel::table! {
    public.jobs (id) {
        id -> BigInt,
        kind -> Text,
        tenant_id -> BigInt,
        payload -> Jsonb,
        status -> Text,
        run_at -> Timestamptz,
        attempts -> BigInt,
        max_attempts -> BigInt,
        last_error -> Nullable<Text>,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    public.schedule_runs (schedule, slot) {
        schedule -> Text,
        slot -> Timestamptz,
        tenants -> BigInt,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    public.usage_snapshots (tenant_id, taken_on) {
        tenant_id -> BigInt,
        taken_on -> Date,
        active_users -> BigInt,
        time_entries -> BigInt,
        storage_bytes -> BigInt,
        taken_at -> Timestamptz,
    }
}

diesel::joinable!(tenant_hosts -> tenants (tenant_id));
diesel::joinable!(jobs -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, tenant_hosts, jobs, usage_snapshots);

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
        token_version -> BigInt,
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

diesel::table! {
    clients (id) {
        id -> BigInt,
        name -> Text,
        billing_email -> Nullable<Text>,
        archived -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    projects (id) {
        id -> BigInt,
        client_id -> BigInt,
        code -> Nullable<Text>,
        name -> Text,
        billable -> Bool,
        hourly_rate -> Nullable<Numeric>,
        budget_hours -> Nullable<Numeric>,
        archived -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        project_id -> BigInt,
        name -> Text,
        billable -> Nullable<Bool>,
        archived -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    project_members (project_id, user_id) {
        project_id -> BigInt,
        user_id -> BigInt,
        hourly_rate -> Nullable<Numeric>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    timesheets (id) {
        id -> BigInt,
        user_id -> BigInt,
        week_start -> Date,
        status -> Text,
        submitted_at -> Timestamptz,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamptz>,
        rejection_reason -> Nullable<Text>,
    }
}

diesel::table! {
    time_entries (id) {
        id -> BigInt,
        user_id -> BigInt,
        project_id -> BigInt,
        task_id -> Nullable<BigInt>,
        work_date -> Date,
        started_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        minutes -> Nullable<Integer>,
        notes -> Text,
        billable -> Bool,
        hourly_rate -> Nullable<Numeric>,
        status -> Text,
        external_ref -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    leave_types (id) {
        id -> BigInt,
        name -> Text,
        yearly_allowance_days -> Numeric,
        accrual -> Text,
        carry_over_cap_days -> Numeric,
        half_days_allowed -> Bool,
        attachment_required_after_days -> Nullable<Numeric>,
        allow_negative -> Bool,
        archived -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    holidays (id) {
        id -> BigInt,
        day -> Date,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    leave_requests (id) {
        id -> BigInt,
        user_id -> BigInt,
        leave_type_id -> BigInt,
        first_day -> Date,
        last_day -> Date,
        half_day_start -> Bool,
        half_day_end -> Bool,
        working_days -> Numeric,
        reason -> Text,
        status -> Text,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamptz>,
        decision_note -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    files (id) {
        id -> BigInt,
        storage_key -> Text,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        uploaded_by -> BigInt,
        leave_request_id -> Nullable<BigInt>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invoices (id) {
        id -> BigInt,
        client_id -> BigInt,
        status -> Text,
        group_by -> Text,
        period_from -> Date,
        period_to -> Date,
        currency -> Text,
        tax_rate -> Numeric,
        discount_rate -> Numeric,
        subtotal -> Numeric,
        discount -> Numeric,
        tax -> Numeric,
        total -> Numeric,
        paid -> Numeric,
        notes -> Text,
        number -> Nullable<Text>,
        number_year -> Nullable<BigInt>,
        number_seq -> Nullable<BigInt>,
        issue_date -> Nullable<Date>,
        due_date -> Nullable<Date>,
        void_reason -> Nullable<Text>,
        voided_at -> Nullable<Timestamptz>,
        sent_at -> Nullable<Timestamptz>,
        created_by -> BigInt,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    invoice_counters (year) {
        year -> BigInt,
        last_seq -> BigInt,
    }
}

diesel::table! {
    invoice_lines (id) {
        id -> BigInt,
        invoice_id -> BigInt,
        position -> BigInt,
        kind -> Text,
        description -> Text,
        quantity -> Numeric,
        unit_price -> Numeric,
        amount -> Numeric,
        minutes -> Nullable<BigInt>,
        project_id -> Nullable<BigInt>,
        task_id -> Nullable<BigInt>,
        user_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    invoice_entries (invoice_id, time_entry_id) {
        invoice_id -> BigInt,
        line_id -> BigInt,
        time_entry_id -> BigInt,
        live -> Bool,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        invoice_id -> BigInt,
        amount -> Numeric,
        paid_on -> Date,
        note -> Text,
        recorded_by -> BigInt,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(leave_requests -> leave_types (leave_type_id));
diesel::joinable!(files -> leave_requests (leave_request_id));
diesel::joinable!(projects -> clients (client_id));
diesel::joinable!(time_entries -> projects (project_id));
diesel::joinable!(time_entries -> tasks (task_id));
diesel::joinable!(tasks -> projects (project_id));
diesel::joinable!(project_members -> projects (project_id));
diesel::joinable!(project_members -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    clients,
    projects,
    tasks,
    project_members,
    users,
    time_entries,
    timesheets,
    leave_types,
    holidays,
    leave_requests,
    files,
    invoices,
    invoice_counters,
    invoice_lines,
    invoice_entries,
    payments
);
