-- What time is tracked against: clients, their projects, the projects' tasks and members.
-- Names are unique ignoring case (client names; project names within a client; task names
-- within a project); the casing typed is kept for display.
CREATE TABLE clients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    billing_email text,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200)
);
CREATE UNIQUE INDEX clients_name_lower_key ON clients (lower(name));

CREATE TABLE projects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES clients (id),
    code text,
    name text NOT NULL,
    billable boolean NOT NULL DEFAULT true,
    hourly_rate numeric(14, 4),
    budget_hours numeric(10, 2),
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT projects_code_check CHECK (code IS NULL OR length(btrim(code)) BETWEEN 1 AND 30),
    CONSTRAINT projects_hourly_rate_check CHECK (hourly_rate IS NULL OR hourly_rate >= 0),
    CONSTRAINT projects_budget_hours_check CHECK (budget_hours IS NULL OR budget_hours > 0)
);
CREATE UNIQUE INDEX projects_client_name_lower_key ON projects (client_id, lower(name));
CREATE UNIQUE INDEX projects_code_lower_key ON projects (lower(code)) WHERE code IS NOT NULL;

CREATE TABLE tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    name text NOT NULL,
    billable boolean,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200)
);
CREATE UNIQUE INDEX tasks_project_name_lower_key ON tasks (project_id, lower(name));

CREATE TABLE project_members (
    project_id bigint NOT NULL REFERENCES projects (id),
    user_id bigint NOT NULL REFERENCES users (id),
    hourly_rate numeric(14, 4),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id),
    CONSTRAINT project_members_hourly_rate_check CHECK (hourly_rate IS NULL OR hourly_rate >= 0)
);
CREATE INDEX project_members_user_id_idx ON project_members (user_id);
