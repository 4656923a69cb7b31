-- The tenant registry: which schema serves which company, and under which hosts.
-- Nothing here belongs to one tenant, and no tenant table points here.
CREATE TABLE public.tenants (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name text NOT NULL,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'ACTIVE',
    created_at timestamptz NOT NULL DEFAULT now(),
    suspended_at timestamptz,
    CONSTRAINT tenants_schema_name_key UNIQUE (schema_name),
    CONSTRAINT tenants_schema_name_check CHECK (
        schema_name ~ '^[a-z][a-z0-9_]{0,62}$'
        AND schema_name <> 'public'
        AND schema_name NOT LIKE 'pg\_%'
        AND schema_name <> 'information_schema'
    ),
    CONSTRAINT tenants_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT tenants_status_check CHECK (status IN ('ACTIVE', 'SUSPENDED'))
);

CREATE TABLE public.tenant_hosts (
    host text PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_hosts_host_check CHECK (host = lower(host) AND length(host) BETWEEN 1 AND 253)
);

CREATE INDEX tenant_hosts_tenant_id_idx ON public.tenant_hosts (tenant_id);
CREATE UNIQUE INDEX tenant_hosts_one_primary_idx ON public.tenant_hosts (tenant_id) WHERE is_primary;
