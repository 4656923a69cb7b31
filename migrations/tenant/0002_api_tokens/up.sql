-- Long-lived tokens for scripts and reporting tools. Only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    token_hash bytea NOT NULL,
    token_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100)
);

CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
