-- Leave: the kinds of leave a tenant grants, its public holidays, and requests for leave.
-- Balances are computed from these (allowance, accrual, carry-over, requests), never
-- stored, so a changed allowance or a cancelled request shows at once.
CREATE TABLE leave_types (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    yearly_allowance_days numeric(6, 2) NOT NULL,
    accrual text NOT NULL DEFAULT 'UPFRONT',
    carry_over_cap_days numeric(6, 2) NOT NULL DEFAULT 0,
    half_days_allowed boolean NOT NULL DEFAULT true,
    attachment_required_after_days numeric(6, 2),
    allow_negative boolean NOT NULL DEFAULT false,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leave_types_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT leave_types_allowance_check CHECK (yearly_allowance_days BETWEEN 0 AND 366),
    CONSTRAINT leave_types_accrual_check CHECK (accrual IN ('UPFRONT', 'MONTHLY')),
    CONSTRAINT leave_types_carry_over_check CHECK (carry_over_cap_days BETWEEN 0 AND 366),
    CONSTRAINT leave_types_attachment_check
        CHECK (attachment_required_after_days IS NULL OR attachment_required_after_days >= 0)
);
CREATE UNIQUE INDEX leave_types_name_lower_key ON leave_types (lower(name));

CREATE TABLE holidays (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day date NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT holidays_day_key UNIQUE (day),
    CONSTRAINT holidays_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100)
);

CREATE TABLE leave_requests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    leave_type_id bigint NOT NULL REFERENCES leave_types (id),
    first_day date NOT NULL,
    last_day date NOT NULL,
    half_day_start boolean NOT NULL DEFAULT false,
    half_day_end boolean NOT NULL DEFAULT false,
    working_days numeric(6, 1) NOT NULL,
    reason text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'PENDING',
    decided_by bigint REFERENCES users (id),
    decided_at timestamptz,
    decision_note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leave_requests_days_check CHECK (last_day >= first_day AND working_days > 0),
    CONSTRAINT leave_requests_status_check
        CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'CANCELLED')),
    CONSTRAINT leave_requests_reason_check CHECK (length(reason) <= 2000),
    -- A user's pending and approved leave never overlaps.
    CONSTRAINT leave_requests_no_overlap EXCLUDE USING gist (
        user_id WITH =,
        daterange(first_day, last_day, '[]') WITH &&
    ) WHERE (status IN ('PENDING', 'APPROVED'))
);
CREATE INDEX leave_requests_user_day_idx ON leave_requests (user_id, first_day);
CREATE INDEX leave_requests_type_idx ON leave_requests (leave_type_id);
CREATE INDEX leave_requests_status_idx ON leave_requests (status, first_day);
