DROP TABLE public.usage_snapshots;
DROP TABLE public.schedule_runs;
DROP TABLE public.jobs;
