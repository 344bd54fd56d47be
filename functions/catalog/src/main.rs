//! The `catalog` Lambda function: wiring only (see the library for the handler).

coins_runtime::http_function!(catalog::handle);
