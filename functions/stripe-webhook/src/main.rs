//! The `stripe-webhook` Lambda function: wiring only (see the library for the handler).

coins_runtime::http_function!(stripe_webhook::handle, stripe_webhook::load);
