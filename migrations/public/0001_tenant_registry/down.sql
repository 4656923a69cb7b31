DROP TABLE public.tenant_hosts;
DROP TABLE public.tenants;
