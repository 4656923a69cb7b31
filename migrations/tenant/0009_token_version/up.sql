-- A user's login tokens carry the version they were issued under; signing out, changing the
-- password or being deactivated moves it on, and every older token stops working.
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 0;
