-- People of one tenant. Emails are unique ignoring case; the typed casing is kept.
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    password_hash text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_check CHECK (role IN ('ADMIN', 'MANAGER', 'MEMBER')),
    CONSTRAINT users_email_check CHECK (length(email) BETWEEN 3 AND 254 AND strpos(email, '@') > 1),
    CONSTRAINT users_name_check CHECK (length(name) <= 200)
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
