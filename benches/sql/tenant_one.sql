-- pgbench: the database side of one authenticated request, always in tenant t0001.
\set s 1
BEGIN READ ONLY;
SELECT set_config('search_path', '"t' || lpad(:s::text, 4, '0') || '"', true);
SELECT role FROM users WHERE id = 1 AND active;
SELECT key, value FROM settings;
COMMIT;
