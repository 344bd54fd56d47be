//! The `purchase` Lambda function: wiring only (see the library for the handler).

coins_runtime::http_function!(purchase::handle, coins_payments::Provider::from_env);
