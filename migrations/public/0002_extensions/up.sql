-- btree_gist lets an exclusion constraint combine equality on a plain column with range
-- overlap (a user's timed entries never overlap). Installed once per database, in public;
-- tenant schemas use its operator classes without having it on their search_path.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
