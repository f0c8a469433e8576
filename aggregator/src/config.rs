//! Command-line configuration.
