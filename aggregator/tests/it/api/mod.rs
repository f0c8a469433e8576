mod auth;
mod fleet;
mod ops;
mod scheduler;
mod signals;
