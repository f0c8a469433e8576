mod grpc;
mod http;
mod json;
