-- Background jobs of every tenant, in one queue. A job is written in the transaction of the
-- work that asks for it, so it exists if and only if that work committed. Workers claim
-- with FOR UPDATE SKIP LOCKED and hold a lease (locked_until) they renew while running; a
-- job whose worker died is claimed again once its lease has passed. Done jobs are deleted
-- in the transaction that did their work; failed ones stay with their last error.
CREATE TABLE public.jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    tenant_id bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'PENDING',
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts bigint NOT NULL DEFAULT 0,
    max_attempts bigint NOT NULL DEFAULT 8,
    last_error text,
    locked_by text,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_status_check CHECK (status IN ('PENDING', 'RUNNING', 'FAILED')),
    CONSTRAINT jobs_kind_check CHECK (length(kind) BETWEEN 1 AND 100),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
    CONSTRAINT jobs_lease_check CHECK ((status = 'RUNNING') = (locked_until IS NOT NULL))
);
CREATE INDEX jobs_pending_idx ON public.jobs (run_at, id) WHERE status = 'PENDING';
CREATE INDEX jobs_running_idx ON public.jobs (locked_until) WHERE status = 'RUNNING';
CREATE INDEX jobs_tenant_id_idx ON public.jobs (tenant_id);

-- Each run of a schedule, once: the worker that records a slot fans it out over the
-- tenants; every other worker finds it taken.
CREATE TABLE public.schedule_runs (
    schedule text NOT NULL,
    slot timestamptz NOT NULL,
    tenants bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, slot)
);

-- What each tenant uses, taken nightly: the basis for plan limits.
CREATE TABLE public.usage_snapshots (
    tenant_id bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    taken_on date NOT NULL,
    active_users bigint NOT NULL,
    time_entries bigint NOT NULL,
    storage_bytes bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, taken_on)
);
