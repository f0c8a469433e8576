"""End-to-end tests of signal-aggregator (embedded store) over real OTLP."""
