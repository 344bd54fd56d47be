//! The `payment-webhook` Lambda function: wiring only (see the library for the handler).

coins_runtime::http_function!(payment_webhook::handle, payment_webhook::load_secret);
