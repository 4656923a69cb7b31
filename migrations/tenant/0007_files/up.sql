-- Files kept for the tenant (leave attachments; invoice PDFs later). The bytes live in the
-- object store under `storage_key`, which begins with the tenant's registry id, so equal
-- row ids in two tenants never share a key.
CREATE TABLE files (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    storage_key text NOT NULL,
    filename text NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    uploaded_by bigint NOT NULL REFERENCES users (id),
    leave_request_id bigint REFERENCES leave_requests (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT files_storage_key_key UNIQUE (storage_key),
    CONSTRAINT files_filename_check CHECK (length(filename) BETWEEN 1 AND 255),
    CONSTRAINT files_size_check CHECK (size_bytes > 0),
    CONSTRAINT files_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
CREATE INDEX files_leave_request_idx ON files (leave_request_id) WHERE leave_request_id IS NOT NULL;
