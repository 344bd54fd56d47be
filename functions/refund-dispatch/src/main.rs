//! The `refund-dispatch` Lambda function: wiring only (see the library for the handler).

coins_runtime::event_function!(refund_dispatch::handle, coins_payments::Provider::from_env);
