//! Settings read once at start-up from the environment (and `.env`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Most files one request may upload.
pub const MAX_FILES_PER_REQUEST: usize = 5;

/// A value that must never reach a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL: the server itself, or a pooler in front of it (pgbouncer in
    /// transaction mode, say).
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub url: Secret,

    /// A connection straight to PostgreSQL, for what needs a session of its own: the change
    /// listener (LISTEN), migrations and the operator commands. Defaults to `DATABASE_URL`;
    /// set it when `DATABASE_URL` points at a pooler.
    #[arg(
        long = "database-direct-url",
        env = "DATABASE_DIRECT_URL",
        hide_env_values = true
    )]
    pub direct_url: Option<Secret>,

    /// Whether a pooled connection keeps the statements it prepared (`on`: each is parsed and
    /// planned once per connection) or prepares each one in the transaction that runs it
    /// (`off`: what a transaction-mode pooler needs, where the next transaction may run on
    /// another server connection). Default: `off` when `DATABASE_DIRECT_URL` names another
    /// address than `DATABASE_URL`, else `on`.
    #[arg(long = "db-statement-cache", env = "DB_STATEMENT_CACHE")]
    pub statement_cache: Option<Switch>,

    /// Connections kept by the pool.
    #[arg(long = "db-pool-size", env = "DB_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// How long a request waits for a free connection before it fails, in milliseconds.
    #[arg(
        long = "db-wait-timeout-ms",
        env = "DB_WAIT_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub wait_timeout_ms: u64,

    /// Longest one statement of an API request may run, in milliseconds, before PostgreSQL
    /// cancels it and the request gets `TIMEOUT` (0: no limit).
    #[arg(
        long = "db-statement-timeout-ms",
        env = "DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub statement_timeout_ms: u64,

    /// The same for a background job's statements, which may do more at once.
    #[arg(
        long = "db-job-statement-timeout-ms",
        env = "DB_JOB_STATEMENT_TIMEOUT_MS",
        default_value_t = 600_000
    )]
    pub job_statement_timeout_ms: u64,

    /// Longest a report's statement (`billableHours`, `utilization`, the CSV) may run, in
    /// milliseconds, before it is cancelled as `TIMEOUT` (0: the statement timeout).
    #[arg(
        long = "db-report-statement-timeout-ms",
        env = "DB_REPORT_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub report_statement_timeout_ms: u64,

    /// Pooled connections one tenant may hold at once (0: half the pool, at least one):
    /// past them its requests wait (then `UNAVAILABLE`) while other tenants are served.
    #[arg(
        long = "db-tenant-pool-share",
        env = "DB_TENANT_POOL_SHARE",
        default_value_t = 0
    )]
    pub tenant_pool_share: usize,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl DatabaseConfig {
    pub fn new(url: impl Into<String>, pool_size: usize) -> Self {
        Self {
            url: Secret::new(url),
            direct_url: None,
            statement_cache: None,
            pool_size,
            wait_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            job_statement_timeout_ms: 600_000,
            report_statement_timeout_ms: 10_000,
            tenant_pool_share: 0,
        }
    }

    /// Connections one tenant may hold at once: `DB_TENANT_POOL_SHARE`, or half the pool.
    pub fn tenant_share(&self) -> usize {
        let share = match self.tenant_pool_share {
            0 => self.pool_size / 2,
            n => n,
        };
        share.clamp(1, self.pool_size.max(1))
    }

    /// A report statement's timeout, within the statement timeout when that is set.
    pub fn report_timeout_ms(&self) -> u64 {
        match (self.report_statement_timeout_ms, self.statement_timeout_ms) {
            (0, api) => api,
            (report, 0) => report,
            (report, api) => report.min(api),
        }
    }

    /// The same, with `direct` as the session connection (see `DATABASE_DIRECT_URL`).
    pub fn with_direct_url(mut self, direct: impl Into<String>) -> Self {
        self.direct_url = Some(Secret::new(direct));
        self
    }

    /// The connection straight to PostgreSQL: `DATABASE_DIRECT_URL`, else `DATABASE_URL`.
    pub fn direct(&self) -> &Secret {
        self.direct_url.as_ref().unwrap_or(&self.url)
    }

    /// Whether `DATABASE_URL` reaches PostgreSQL through something else (a pooler): a
    /// direct URL was given and differs.
    pub fn behind_pooler(&self) -> bool {
        self.direct() != &self.url
    }

    /// Whether pooled connections keep their prepared statements (`DB_STATEMENT_CACHE`).
    pub fn caches_statements(&self) -> bool {
        match self.statement_cache {
            Some(switch) => switch == Switch::On,
            None => !self.behind_pooler(),
        }
    }

    /// These settings for a pool straight to PostgreSQL (`DATABASE_DIRECT_URL`), for the
    /// operator commands: migrations and their locks need no pooler in between.
    pub fn direct_only(&self) -> Self {
        Self {
            url: self.direct().clone(),
            direct_url: None,
            ..self.clone()
        }
    }

    pub fn wait_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_timeout_ms)
    }
}

/// What the HTTP service needs besides the database.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    /// Secret used to sign login tokens (HS256). At least 32 bytes.
    #[arg(long = "jwt-secret", env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Secret,

    /// Lifetime of a login token, in minutes.
    #[arg(long = "jwt-ttl-minutes", env = "JWT_TTL_MINUTES", default_value_t = 720)]
    pub jwt_ttl_minutes: u32,

    /// Scheme of the tenants' public URLs (`SITE_URL`): `https`, or `http` in development.
    #[arg(
        long = "public-url-scheme",
        env = "PUBLIC_URL_SCHEME",
        default_value = "https"
    )]
    pub public_url_scheme: String,

    /// Port of the tenants' public URLs, when not the scheme's default.
    #[arg(long = "public-url-port", env = "PUBLIC_URL_PORT")]
    pub public_url_port: Option<u16>,

    /// Largest request body accepted, in bytes.
    #[arg(long = "max-body-bytes", env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a request's whole body may take to arrive once its header has; slower gets
    /// 408 and nothing of it is run.
    #[arg(
        long = "http-body-timeout-seconds",
        env = "HTTP_BODY_TIMEOUT_SECONDS",
        default_value_t = 30
    )]
    pub body_timeout_seconds: u64,

    /// Deepest GraphQL selection accepted.
    #[arg(long = "graphql-max-depth", env = "GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,

    /// Largest GraphQL query complexity accepted.
    #[arg(
        long = "graphql-max-complexity",
        env = "GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 2_000
    )]
    pub graphql_max_complexity: usize,

    /// Where uploaded files are kept: a folder, or `s3://bucket[/prefix]` (credentials,
    /// region and endpoint from the `AWS_*` variables).
    #[arg(long = "file-store", env = "FILE_STORE", default_value = ".data/files")]
    pub file_store: String,

    /// Largest file accepted, in bytes.
    #[arg(long = "file-max-bytes", env = "FILE_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub file_max_bytes: usize,

    /// TrueType font of invoice PDFs (regular weight).
    #[arg(
        long = "pdf-font",
        env = "PDF_FONT",
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub pdf_font: String,

    /// TrueType font of invoice PDFs (bold).
    #[arg(
        long = "pdf-font-bold",
        env = "PDF_FONT_BOLD",
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    )]
    pub pdf_font_bold: String,

    /// Threads that check and hash passwords (0: one per core). Each check holds 19 MiB
    /// while it runs, so this bounds what logins take of memory.
    #[arg(
        long = "password-hash-threads",
        env = "PASSWORD_HASH_THREADS",
        default_value_t = 0
    )]
    pub password_hash_threads: usize,

    /// Password checks that may wait for a thread (0: sixteen per thread); past them a login
    /// is refused as `UNAVAILABLE` (HTTP 503, `Retry-After`).
    #[arg(
        long = "password-hash-queue",
        env = "PASSWORD_HASH_QUEUE",
        default_value_t = 0
    )]
    pub password_hash_queue: usize,

    /// Wrong passwords one account (in one tenant) may have per minute; past them its
    /// logins are `THROTTLED` (HTTP 429, `Retry-After`) until the budget comes back.
    #[arg(
        long = "login-failures-per-account",
        env = "LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_failures_per_account: u32,

    /// Failed credential checks (wrong passwords, unknown or forged tokens) one client
    /// address may have per minute, over all accounts and tenants.
    #[arg(
        long = "credential-failures-per-address",
        env = "CREDENTIAL_FAILURES_PER_ADDRESS",
        default_value_t = 30
    )]
    pub credential_failures_per_address: u32,

    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges, comma
    /// separated). From any other peer the header is ignored and the peer is the client.
    #[arg(long = "trusted-proxies", env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyRange>,

    /// Serve GraphiQL at /graphiql and answer introspection queries (`__schema`, `__type`):
    /// off unless set, so a stranger cannot map the schema (`dev.sh up` sets it).
    #[arg(long = "graphiql", env = "GRAPHIQL", default_value_t = false, action = clap::ArgAction::Set)]
    pub graphiql: bool,
}

impl ServiceConfig {
    /// Settings for tests and tools: everything at its default but the signing secret, and
    /// GraphiQL with introspection on, as in development.
    pub fn with_secret(jwt_secret: impl Into<String>) -> Self {
        Self {
            jwt_secret: Secret::new(jwt_secret),
            jwt_ttl_minutes: 720,
            public_url_scheme: "https".to_owned(),
            public_url_port: None,
            max_body_bytes: 1024 * 1024,
            body_timeout_seconds: 30,
            graphql_max_depth: 12,
            graphql_max_complexity: 2_000,
            file_store: std::env::temp_dir()
                .join("crowdminder-files")
                .to_string_lossy()
                .into_owned(),
            file_max_bytes: 10 * 1024 * 1024,
            pdf_font: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".to_owned(),
            pdf_font_bold: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf".to_owned(),
            password_hash_threads: 0,
            password_hash_queue: 0,
            login_failures_per_account: 5,
            credential_failures_per_address: 30,
            trusted_proxies: Vec::new(),
            graphiql: true,
        }
    }

    /// The largest multipart (upload) request body: the files a request may carry, and room
    /// for the operation.
    pub fn max_upload_body_bytes(&self) -> usize {
        self.max_body_bytes + MAX_FILES_PER_REQUEST * self.file_max_bytes
    }

    /// How long a request's body may take to arrive (at least a second).
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds.max(1))
    }

    pub fn jwt_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.jwt_ttl_minutes) * 60)
    }
}

/// An address or a CIDR range of trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange(pub ipnet::IpNet);

impl ProxyRange {
    pub fn contains(&self, address: &std::net::IpAddr) -> bool {
        self.0.contains(address)
    }
}

impl std::str::FromStr for ProxyRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net.trunc()));
        }
        s.parse::<std::net::IpAddr>()
            .map(|address| Self(ipnet::IpNet::from(address)))
            .map_err(|_| format!("{s:?} is neither an address nor a CIDR range"))
    }
}

/// Where `serve` listens.
#[derive(Debug, Clone, clap::Args)]
pub struct BindConfig {
    /// Address to listen on.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish, in seconds,
    /// before the server stops anyway.
    #[arg(
        long = "shutdown-grace-seconds",
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 20
    )]
    pub shutdown_grace_seconds: u64,

    /// Connections served at once; past them new connections wait to be accepted.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds a connection has to send a request's whole header, from its opening or from
    /// the previous answer: it bounds slow headers and idle keep-alive connections alike.
    #[arg(
        long = "http-header-timeout-seconds",
        env = "HTTP_HEADER_TIMEOUT_SECONDS",
        default_value_t = 20
    )]
    pub header_timeout_seconds: u64,

    /// Largest request header (request line and all fields), in bytes; larger gets 431.
    #[arg(
        long = "http-max-header-bytes",
        env = "HTTP_MAX_HEADER_BYTES",
        default_value_t = 32 * 1024
    )]
    pub max_header_bytes: usize,

    /// Address to serve `/metrics` on (Prometheus text), apart from the API; unset, it is
    /// not served.
    #[arg(long = "metrics-bind", env = "METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
}
