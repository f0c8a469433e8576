//! OTLP receivers: gRPC (`grpc`) and HTTP (`http`, protobuf and JSON).

pub mod otlp_json;
