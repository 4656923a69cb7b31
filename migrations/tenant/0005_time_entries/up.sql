-- Weekly timesheets: a member submits a week of entries, a manager approves or rejects it.
-- One row per user and week, kept after a decision as its record.
CREATE TABLE timesheets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    week_start date NOT NULL,
    status text NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    decided_by bigint REFERENCES users (id),
    decided_at timestamptz,
    rejection_reason text,
    CONSTRAINT timesheets_status_check CHECK (status IN ('SUBMITTED', 'APPROVED', 'REJECTED')),
    CONSTRAINT timesheets_user_week_key UNIQUE (user_id, week_start)
);
CREATE INDEX timesheets_status_week_idx ON timesheets (status, week_start);

-- Time entries. Three shapes: a duration on a date (minutes only), a timed entry (start,
-- end, minutes = end - start) and a running timer (start only). `work_date` is the date in
-- the tenant's time zone, fixed when the entry is written, so reports group by plain dates.
-- `hourly_rate` is the rate that applied when the entry was made (member's, else project's).
CREATE TABLE time_entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    project_id bigint NOT NULL REFERENCES projects (id),
    task_id bigint REFERENCES tasks (id),
    work_date date NOT NULL,
    started_at timestamptz,
    ended_at timestamptz,
    -- At most 1440 (the check below): an int is plenty.
    -- squawk-ignore prefer-bigint-over-int
    minutes integer,
    notes text NOT NULL DEFAULT '',
    billable boolean NOT NULL,
    hourly_rate numeric(14, 4),
    status text NOT NULL DEFAULT 'DRAFT',
    external_ref text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_entries_status_check
        CHECK (status IN ('DRAFT', 'SUBMITTED', 'APPROVED', 'INVOICED')),
    CONSTRAINT time_entries_minutes_check CHECK (minutes IS NULL OR minutes BETWEEN 1 AND 1440),
    CONSTRAINT time_entries_shape_check CHECK (
        (started_at IS NULL AND ended_at IS NULL AND minutes IS NOT NULL)
        OR (started_at IS NOT NULL AND ended_at IS NULL AND minutes IS NULL)
        OR (started_at IS NOT NULL AND ended_at > started_at AND minutes IS NOT NULL)
    ),
    CONSTRAINT time_entries_notes_check CHECK (length(notes) <= 5000),
    CONSTRAINT time_entries_external_ref_check
        CHECK (external_ref IS NULL OR length(external_ref) BETWEEN 1 AND 200),
    -- A running timer reaches to infinity, so nothing can be logged after its start.
    CONSTRAINT time_entries_no_overlap EXCLUDE USING gist (
        user_id WITH =,
        tstzrange(started_at, ended_at) WITH &&
    ) WHERE (started_at IS NOT NULL)
);
CREATE UNIQUE INDEX time_entries_one_timer_key ON time_entries (user_id)
    WHERE started_at IS NOT NULL AND ended_at IS NULL;
CREATE UNIQUE INDEX time_entries_external_ref_key ON time_entries (external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX time_entries_work_date_idx ON time_entries (work_date, id);
CREATE INDEX time_entries_user_date_idx ON time_entries (user_id, work_date, id);
CREATE INDEX time_entries_project_date_idx ON time_entries (project_id, work_date);
CREATE INDEX time_entries_task_id_idx ON time_entries (task_id) WHERE task_id IS NOT NULL;
