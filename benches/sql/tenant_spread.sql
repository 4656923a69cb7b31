-- pgbench: the same as tenant_one.sql, in a tenant drawn at random from t0000..t0999.
\set s random(0, 999)
BEGIN READ ONLY;
SELECT set_config('search_path', '"t' || lpad(:s::text, 4, '0') || '"', true);
SELECT role FROM users WHERE id = 1 AND active;
SELECT key, value FROM settings;
COMMIT;
