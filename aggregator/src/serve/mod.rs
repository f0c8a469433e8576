//! Query API, OpenAPI document, health and `/metrics`.
