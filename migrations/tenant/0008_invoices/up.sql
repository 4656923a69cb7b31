-- Billing: invoices built from approved billable time (and manual lines), numbered when
-- issued, paid in one or more payments, or voided.
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES clients (id),
    status text NOT NULL DEFAULT 'DRAFT',
    group_by text NOT NULL,
    period_from date NOT NULL,
    period_to date NOT NULL,
    currency text NOT NULL,
    -- Percentages, e.g. 15 for 15 %.
    tax_rate numeric(7, 4) NOT NULL DEFAULT 0,
    discount_rate numeric(7, 4) NOT NULL DEFAULT 0,
    -- Kept equal to the lines after every change (rounded to the currency's minor unit).
    subtotal numeric(18, 4) NOT NULL DEFAULT 0,
    discount numeric(18, 4) NOT NULL DEFAULT 0,
    tax numeric(18, 4) NOT NULL DEFAULT 0,
    total numeric(18, 4) NOT NULL DEFAULT 0,
    paid numeric(18, 4) NOT NULL DEFAULT 0,
    notes text NOT NULL DEFAULT '',
    number text,
    number_year bigint,
    number_seq bigint,
    issue_date date,
    due_date date,
    void_reason text,
    voided_at timestamptz,
    -- When it was last handed to the outbox for the client.
    sent_at timestamptz,
    created_by bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_status_check CHECK (status IN ('DRAFT', 'ISSUED', 'PAID', 'VOID')),
    CONSTRAINT invoices_group_by_check CHECK (group_by IN ('PROJECT', 'TASK', 'USER', 'ENTRY')),
    CONSTRAINT invoices_period_check CHECK (period_to >= period_from),
    CONSTRAINT invoices_rates_check
        CHECK (tax_rate BETWEEN 0 AND 100 AND discount_rate BETWEEN 0 AND 100),
    CONSTRAINT invoices_notes_check CHECK (length(notes) <= 5000),
    -- Issued (and later paid or voided) invoices have their number and dates.
    CONSTRAINT invoices_issued_check CHECK (
        status = 'DRAFT'
        OR (number IS NOT NULL AND number_seq IS NOT NULL AND issue_date IS NOT NULL
            AND due_date IS NOT NULL)
    ),
    CONSTRAINT invoices_paid_check CHECK (paid >= 0 AND paid <= total)
);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number) WHERE number IS NOT NULL;
CREATE UNIQUE INDEX invoices_number_seq_key ON invoices (number_year, number_seq)
    WHERE number_seq IS NOT NULL;
CREATE INDEX invoices_client_idx ON invoices (client_id);
CREATE INDEX invoices_status_due_idx ON invoices (status, due_date);

-- The last number given per year (year 0 when the format has no year): taken and raised
-- in the issuing transaction, so a rolled-back issue gives its number back (no gaps) and
-- concurrent issues wait for each other.
CREATE TABLE invoice_counters (
    year bigint PRIMARY KEY,
    last_seq bigint NOT NULL
);

CREATE TABLE invoice_lines (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position bigint NOT NULL,
    kind text NOT NULL,
    description text NOT NULL,
    -- Hours for time lines; any quantity for manual ones.
    quantity numeric(18, 4) NOT NULL,
    unit_price numeric(18, 4) NOT NULL,
    amount numeric(18, 4) NOT NULL,
    -- Time lines: their minutes (the amount is minutes x price / 60, rounded once).
    minutes bigint,
    project_id bigint REFERENCES projects (id),
    task_id bigint REFERENCES tasks (id),
    user_id bigint REFERENCES users (id),
    CONSTRAINT invoice_lines_kind_check CHECK (kind IN ('TIME', 'MANUAL')),
    CONSTRAINT invoice_lines_description_check CHECK (length(description) BETWEEN 1 AND 1000)
);
CREATE INDEX invoice_lines_invoice_idx ON invoice_lines (invoice_id, position);

-- Which entries a line bills. `live` while the invoice is a draft, issued or paid; a void
-- invoice keeps its rows (history) but not live, so the entries can be billed again.
CREATE TABLE invoice_entries (
    invoice_id bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    line_id bigint NOT NULL REFERENCES invoice_lines (id) ON DELETE CASCADE,
    time_entry_id bigint NOT NULL REFERENCES time_entries (id),
    live boolean NOT NULL DEFAULT true,
    CONSTRAINT invoice_entries_pkey PRIMARY KEY (invoice_id, time_entry_id)
);
-- An entry is on at most one live invoice, whatever runs at once.
CREATE UNIQUE INDEX invoice_entries_live_key ON invoice_entries (time_entry_id) WHERE live;
CREATE INDEX invoice_entries_line_idx ON invoice_entries (line_id);

CREATE TABLE payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES invoices (id),
    amount numeric(18, 4) NOT NULL,
    paid_on date NOT NULL,
    note text NOT NULL DEFAULT '',
    recorded_by bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_amount_check CHECK (amount > 0),
    CONSTRAINT payments_note_check CHECK (length(note) <= 1000)
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id);
