//! The `refund` Lambda function: wiring only (see the library for the handler).

coins_runtime::http_function!(refund::handle);
