//! One connection type for a single Redis node and for Redis Cluster.
//!
//! Every request the store sends touches one tenant's keys (one hash slot) or
//! the tenant index, so the same code runs on both; Redis Cluster's MOVED/ASK
//! redirections and topology refreshes are handled by the cluster client.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};

use super::endpoint::{Endpoints, RedisUrl};

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects to `url`: a comma-separated list is a set of Redis Cluster seed
    /// nodes; a single URL is probed and treated as a cluster seed when the
    /// server says it runs in cluster mode. `rediss://` connections verify the
    /// server against `--redis-ca-file` (else the system roots) and present the
    /// client certificate when one is configured.
    pub async fn connect(url: &RedisUrl, timeout: Duration) -> RedisResult<RedisConn> {
        let endpoints = url.resolve().map_err(|why| {
            RedisError::from((
                ErrorKind::InvalidClientConfig,
                "invalid Redis settings",
                why,
            ))
        })?;
        if let [seed] = endpoints.seeds.as_slice()
            && !Self::is_cluster_node(&endpoints, seed, timeout).await?
        {
            let client = endpoints.client(seed)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let manager = ConnectionManager::new_with_config(client, config).await?;
            return Ok(RedisConn::Single(manager));
        }
        let client = endpoints
            .cluster_builder()
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3)
            .build()?;
        Ok(RedisConn::Cluster(client.get_async_connection().await?))
    }

    async fn is_cluster_node(
        endpoints: &Endpoints,
        seed: &ConnectionInfo,
        timeout: Duration,
    ) -> RedisResult<bool> {
        let client = endpoints.client(seed)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn)
            .await?;
        Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1"))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
