mod auth;
mod contract;
mod fleet;
mod ops;
mod scheduler;
mod signals;
