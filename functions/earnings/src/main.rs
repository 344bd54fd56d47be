//! The `earnings` Lambda function: wiring only (see the library for the handler).

coins_runtime::event_function!(earnings::handle);
