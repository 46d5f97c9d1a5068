//! What the store talks to: one Redis, a Redis Cluster, or the primary that Redis
//! Sentinels name, the URL schemes that say which, and the deadline every call keeps.
//! Shared by the connection (`conn.rs`) and the Sentinels' watch (`sentinel.rs`), which
//! moves the connection to a new primary.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How long one call may take, connecting included, before it is [`Unavailable`].
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The store URL's scheme for a Redis Cluster, followed by comma-separated seed nodes.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// [`CLUSTER_SCHEME`] over TLS.
pub const TLS_CLUSTER_SCHEME: &str = "rediss+cluster://";

/// The store URL's scheme for the primary that Redis Sentinels watch: comma-separated
/// Sentinels, then `/` and the name they know the primary by (`sentinel monitor NAME
/// …`), and `/DB` for a database other than 0.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// [`SENTINEL_SCHEME`] over TLS, to the Sentinels and to Redis.
pub const TLS_SENTINEL_SCHEME: &str = "rediss+sentinel://";

/// One Redis, or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Why a Redis whose `ROLE` answered `role` cannot be the store, if it cannot: a
/// replica (`["slave", host, port, …]`) or a Sentinel.
pub(super) fn not_a_primary(role: &[Value]) -> Option<String> {
    let text = |v: Option<&Value>| match v {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => "?".to_owned(),
    };
    match text(role.first()).as_str() {
        "slave" | "replica" => Some(format!(
            "this Redis is a replica of {}:{}, which refuses writes: name its primary",
            text(role.get(1)),
            text(role.get(2))
        )),
        "sentinel" => {
            let watched: Vec<String> = match role.get(1) {
                Some(Value::Array(names)) => names.iter().map(|n| text(Some(n))).collect(),
                _ => Vec::new(),
            };
            let service = watched.first().map_or("NAME", String::as_str);
            Some(format!(
                "this is a Redis Sentinel (watching {}), not a Redis: name it as {SENTINEL_SCHEME}HOST:PORT/{service}",
                if watched.is_empty() { "nothing".to_owned() } else { watched.join(", ") }
            ))
        }
        _ => None,
    }
}
