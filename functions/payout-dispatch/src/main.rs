//! The `payout-dispatch` Lambda function: wiring only (see the library for the handler).

coins_runtime::event_function!(payout_dispatch::handle, coins_payments::Provider::from_env);
