mod redis;
mod redis_tls;
