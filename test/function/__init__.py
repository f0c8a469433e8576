"""Black-box tests of the built function-signals binary over real gRPC."""
