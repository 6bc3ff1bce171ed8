//! PostgreSQL-backed stores: several authority nodes on one database act as one authority.
//!
//! [`PgDatabase`] owns a small tokio runtime and a connection pool. Store methods are
//! synchronous, like SQLite's, and may be called from anywhere (an async worker, a blocking
//! thread, the log writer): each runs its queries on the database's own runtime and waits for
//! the answer on a plain channel. Every connection runs with `synchronous_commit=on` (a
//! commit is durable before it is acknowledged) and a statement timeout, so an unreachable or
//! stuck database is an error after a bounded wait, never a hang: callers fail closed.

mod approvals;
mod keys;
mod log;
mod policies;
mod principals;
mod replay;
mod schema;

pub use approvals::PgApprovals;
pub use keys::PgSigningKeys;
pub use log::PgLog;
pub use policies::PgPolicies;
pub use principals::PgPrincipals;
pub use replay::PgRevocations;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::error::StoreError;

/// How long a statement may run before the server cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a connection (connect, or a free one from the pool).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per node.
const POOL_SIZE: usize = 16;

/// A pooled connection to the database.
pub type PgClient = Object;

/// One PostgreSQL database, shared by the stores of one node (and by every node).
pub struct PgDatabase {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`, libpq style; `options=-c
    /// search_path=…` selects a schema) and applies the embedded migrations: idempotent, and
    /// safe when several nodes start at once (they take turns under an advisory lock).
    pub fn connect(url: &str) -> Result<Arc<Self>, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Postgres(format!("database url: {e}")))?;
        // Connections are plain TCP. A URL that demands TLS is refused up front with the
        // reason, rather than failing later as a handshake error on every connection.
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::Postgres(
                "database url: sslmode=require, but writ connects to PostgreSQL without TLS \
                 (use a local socket, a private network or a TLS tunnel, and sslmode=disable)"
                    .into(),
            ));
        }
        let options = format!(
            "{} -c synchronous_commit=on -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            STATEMENT_TIMEOUT.as_millis()
        );
        config.options(options.trim());
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("writ");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("writ-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres(format!("runtime: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        let db = Arc::new(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
        });
        db.run(|mut client| async move { schema::migrate(&mut client).await })?;
        Ok(db)
    }

    /// Runs `work` with a pooled connection on the database's runtime and waits for it.
    /// Callable from any thread, async or not: it blocks only the calling thread.
    pub fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(PgClient) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pool = self.pool.clone();
        self.handle.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => work(client).await,
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| StoreError::Postgres("the database task stopped".into()))?
    }

    /// Whether the database answers now.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.run(|client| async move {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another runtime (as in async tests).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A non-negative count or time for a BIGINT column.
pub(crate) fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A BIGINT column read back as a count or time.
pub(crate) fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// For tests: a fresh, empty schema in the database at `base_url`, and the URL that selects it
/// (so tests sharing one server never see each other's tables). The schema is left behind.
#[doc(hidden)]
pub fn scratch_url(base_url: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Postgres(e.to_string()))?;
    let schema = format!(
        "writ_test_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Postgres(format!("runtime: {e}")))?;
    let url = base_url.to_owned();
    let create = format!("CREATE SCHEMA {schema}");
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            let driver = tokio::spawn(connection);
            client.batch_execute(&create).await?;
            drop(client);
            let _ = driver.await;
            Ok::<_, StoreError>(())
        })
    })
    .join()
    .map_err(|_| StoreError::Postgres("scratch schema: thread panicked".into()))??;
    let sep = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base_url}{sep}options=-c%20search_path%3D{schema}"
    ))
}

#[cfg(test)]
mod tests {
    use super::PgDatabase;

    #[test]
    fn a_url_that_demands_tls_is_refused_with_the_reason() {
        // Refused before connecting: nothing listens on port 1.
        let err = PgDatabase::connect("postgres://writ@127.0.0.1:1/writ?sslmode=require")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("sslmode=require"), "{err}");
        assert!(err.contains("without TLS"), "{err}");
    }
}
